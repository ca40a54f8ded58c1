import pytest

from cnnlab.errors import ConfigError
from cnnlab.transfer.recommend import LARGE_DATA, SMALL_DATA, STRATEGIES, recommend


@pytest.mark.parametrize("n, similarity, strategy, layer_or_k", [
    (100, "similar", "linear-probe", "pre_logits"),      # little data, similar: top features
    (100, "different", "linear-probe", "stage3"),        # little data, different: earlier layer
    (SMALL_DATA, "similar", "top-k-layers", 2),          # more data, similar: top layers
    (LARGE_DATA, "similar", "full", None),               # lots, similar: fine-tune all
    (LARGE_DATA, "different", "full", None),             # lots, different: fine-tune all
    (SMALL_DATA, 0.2, "full", None),                     # a number below 0.5 is "different"
    (SMALL_DATA - 1, 0.9, "linear-probe", "pre_logits"),
])
def test_cs231n_table(n, similarity, strategy, layer_or_k):
    rec = recommend(n, similarity)
    assert rec.strategy == strategy and rec.strategy in STRATEGIES
    if strategy == "linear-probe":
        assert rec.layer == layer_or_k
    if strategy == "top-k-layers":
        assert rec.top_k == layer_or_k
    assert str(n) in rec.reason.replace(",", "") and rec.reason in str(rec)


def test_little_different_data_says_it_is_hard():
    assert "hard" in recommend(50, "different").reason


def test_full_on_mid_size_different_data_slows_the_backbone():
    assert recommend(5_000, "different").lr_mult == {"backbone": 0.1}


@pytest.mark.parametrize("n, sim", [(0, "similar"), (-3, "similar"), (1.5, "similar"),
                                    (True, "similar"), (10, "close-ish"), (10, 1.5)])
def test_bad_arguments(n, sim):
    with pytest.raises(ConfigError):
        recommend(n, sim)
