import numpy as np
import pytest

from cnnlab.errors import ConfigError, DataError
from cnnlab.zeroshot.text import TfidfEncoder, encoder_from_state

SEEN = {"a": "a red bird with red wings", "b": "a blue striped bird", "c": "a green bird"}


def test_vocabulary_comes_from_seen_text_only():
    enc = TfidfEncoder().fit(SEEN)
    assert "red" in enc.vocabulary and "purple" not in enc.vocabulary
    assert "a" not in enc.vocabulary and "with" not in enc.vocabulary      # stop words
    x = enc.transform({"new": "a purple red bird"})
    assert x.shape == (1, enc.dim) and x.dtype == np.float32
    assert x[0, enc.vocabulary.index("red")] > 0
    assert np.isclose(np.linalg.norm(x[0]), 1.0)


def test_state_round_trip_gives_the_same_vectors():
    enc = TfidfEncoder().fit(SEEN)
    again = encoder_from_state(enc.state())
    texts = {"x": "red striped wings", "y": "green bird bird"}
    np.testing.assert_allclose(again.transform(texts), enc.transform(texts))


def test_bad_text_names_the_class():
    enc = TfidfEncoder().fit(SEEN)
    with pytest.raises(DataError, match="'mystery'"):
        enc.transform({"mystery": "purple spotted"})
    with pytest.warns(UserWarning, match="mystery"):
        enc.transform({"mystery": "purple spotted"}, strict=False)
    with pytest.raises(DataError, match="'empty'"):
        TfidfEncoder().fit({"ok": "red bird", "empty": "   "})
    with pytest.raises(DataError, match="stop words"):
        TfidfEncoder().fit({"x": "the and of", "y": "a the"})
    with pytest.raises(ConfigError, match="not fitted"):
        TfidfEncoder().transform({"x": "red"})
