import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cnnlab.errors import ConfigError
from cnnlab.zeroshot.evaluate import one_vs_rest_auc, topk_accuracy, zeroshot_report


def test_report_matches_sklearn_and_definitions():
    rng = np.random.default_rng(0)
    seen, unseen = [0, 1, 2], [3, 4, 5, 6]
    labels = rng.integers(0, 7, 200)
    scores = rng.normal(size=(200, 7)) + 1.5 * np.eye(7)[labels]
    r = zeroshot_report(scores, labels, seen, unseen, [f"c{i}" for i in range(7)])
    mu = np.isin(labels, unseen)
    expect_u = [roc_auc_score(labels[mu] == c, scores[mu, c]) for c in unseen]
    ms = np.isin(labels, seen)
    expect_s = [roc_auc_score(labels[ms] == c, scores[ms, c]) for c in seen]
    assert r["auc_unseen"] == pytest.approx(np.mean(expect_u))
    assert r["auc_seen"] == pytest.approx(np.mean(expect_s))
    assert r["auc_mean"] == pytest.approx(np.mean(expect_u + expect_s))
    assert r["auc_per_unseen_class"]["c3"] == pytest.approx(expect_u[0])
    among = scores[mu][:, unseen].argmax(1)
    assert r["top1_unseen"] == pytest.approx(np.mean(np.asarray(unseen)[among] == labels[mu]))
    gen = np.mean(scores[mu].argmax(1) == labels[mu])
    assert r["generalized_top1_unseen"] == pytest.approx(gen)
    # the generalized setting is harder: seen classes compete with the unseen ones
    assert r["generalized_top1_unseen"] <= r["top1_unseen"]
    assert r["top5_unseen"] == 1.0          # only 4 unseen classes


def test_topk_and_degenerate_cases():
    s = np.array([[0.1, 0.9, 0.5], [0.8, 0.1, 0.3]])
    assert topk_accuracy(s, np.array([2, 0]), 1) == 0.5
    assert topk_accuracy(s, np.array([2, 0]), 2) == 1.0
    assert np.isnan(one_vs_rest_auc(s, np.array([0, 0]), [0])[0])     # no negatives
    with pytest.raises(ConfigError, match="overlap"):
        zeroshot_report(s, np.array([0, 1]), [0, 1], [1, 2])


def test_centering_removes_a_per_image_offset_within_each_group():
    rng = np.random.default_rng(1)
    seen, unseen = [0, 1, 2], [3, 4, 5, 6]
    labels = rng.integers(0, 7, 300)
    clean = rng.normal(size=(300, 7)) + 1.0 * np.eye(7)[labels]
    offset = rng.normal(scale=5.0, size=(300, 1))        # images that score high on every class
    r = zeroshot_report(clean + offset, labels, seen, unseen, center=True)
    mu = np.isin(labels, unseen)
    sub = clean[mu][:, unseen]
    sub = sub - sub.mean(1, keepdims=True)               # centred among the unseen classes only
    expect = [roc_auc_score(labels[mu] == c, sub[:, i]) for i, c in enumerate(unseen)]
    assert r["auc_unseen"] == pytest.approx(np.mean(expect))
    # the offset ruins the raw ranking, which is still reported
    assert r["auc_unseen_raw"] < r["auc_unseen"] - 0.1 and r["centered"] is True
    plain = zeroshot_report(clean + offset, labels, seen, unseen)
    assert plain["auc_unseen"] == pytest.approx(r["auc_unseen_raw"]) and not plain["centered"]
    # a per-image shift changes no image's top-k
    assert plain["top1_unseen"] == r["top1_unseen"]
    assert plain["generalized_top1_unseen"] == r["generalized_top1_unseen"]
