import numpy as np
import pytest
from PIL import Image

from cnnlab.errors import ConfigError
from cnnlab.zeroshot.explain import (plot_retrieval, plot_word_sensitivities, retrieve,
                                     word_sensitivities)
from cnnlab.zeroshot.models import ZeroShotConfig, fit_zeroshot


@pytest.fixture(scope="module")
def trained(arrays):
    a = arrays
    net, _ = fit_zeroshot(a["t_seen"], a["y_seen"], a["f_seen"], config=ZeroShotConfig(epochs=25))
    return net


def test_sensitive_words_are_the_ones_carrying_the_signal(arrays, synthetic, trained, tmp_path):
    a, vocab = arrays, arrays["enc"].vocabulary
    hits = 0
    for k, name in enumerate(synthetic["unseen"]):
        attributes = set(name.split("_"))                  # e.g. {"red", "striped", "small"}
        images = a["f_unseen"][a["y_unseen"] == k]
        pairs = word_sensitivities(trained, a["t_unseen"][k], vocab, images, top=3)
        assert len(pairs) == 3 and pairs[0][1] >= pairs[1][1] >= pairs[2][1]
        hits += len(attributes & {w for w, _ in pairs})
    # 6 unseen classes x 3 attribute words; filler words ("forests", "dawn") carry no signal
    assert hits >= 14
    plot_word_sensitivities(pairs, tmp_path / "w.png", "test")
    assert Image.open(tmp_path / "w.png").size[0] > 100


def test_retrieval_ranks_the_described_class_first(arrays, trained, tmp_path):
    a = arrays
    idx, scores = retrieve(trained, a["t_unseen"][2], a["f_unseen"], k=5)
    assert len(idx) == 5 and np.all(np.diff(scores) <= 0)
    assert (a["y_unseen"][idx] == 2).mean() >= 0.8
    imgs = np.random.default_rng(0).integers(0, 256, (5, 3, 12, 12), dtype=np.uint8)
    plot_retrieval(imgs, scores, tmp_path / "r.png", labels=[str(i) for i in idx])
    assert Image.open(tmp_path / "r.png").size[0] > 100


def test_vocabulary_size_must_match(arrays, trained):
    with pytest.raises(ConfigError, match="vocabulary"):
        word_sensitivities(trained, arrays["t_unseen"][0], ["a", "b"], arrays["f_unseen"][:2])
