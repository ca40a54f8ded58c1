import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from cnnlab.errors import ConfigError, InputShapeError, InvalidCheckpointError
from cnnlab.zeroshot.models import (ZeroShotConfig, ZeroShotNet, fit_zeroshot, load_zeroshot,
                                    predict_scores)


def mean_auc(scores, y):
    return np.mean([roc_auc_score(y == k, scores[:, k]) for k in range(scores.shape[1])])


@pytest.mark.parametrize("kind", ["fc", "conv", "fc+conv"])
def test_recognises_unseen_classes_from_text_alone(arrays, kind):
    a = arrays
    net, history = fit_zeroshot(a["t_seen"], a["y_seen"], a["f_seen"], a["m_seen"],
                                ZeroShotConfig(kind=kind, epochs=25))
    p = 1 / 18                                     # 18 seen classes, one positive per image
    prior_only = -(p * np.log(p) + (1 - p) * np.log(1 - p))   # BCE of a constant score
    assert history[-1] < 0.7 * prior_only          # it learned more than the class imbalance
    s = predict_scores(net, a["t_unseen"], a["f_unseen"], a["m_unseen"])
    assert s.shape == (len(a["y_unseen"]), 6)
    # chance is AUC 0.5 and top-1 1/6 among the 6 unseen classes
    assert mean_auc(s, a["y_unseen"]) > 0.8
    assert (s.argmax(1) == a["y_unseen"]).mean() > 0.35


def test_shuffled_text_destroys_zero_shot_accuracy(arrays):
    """The unseen-class signal comes from the descriptions: permuted articles score at chance."""
    a = arrays
    net, _ = fit_zeroshot(a["t_seen"], a["y_seen"], a["f_seen"], config=ZeroShotConfig(epochs=25))
    right = predict_scores(net, a["t_unseen"], a["f_unseen"])
    wrong = predict_scores(net, a["t_unseen"][[1, 2, 3, 4, 5, 0]], a["f_unseen"])
    assert mean_auc(right, a["y_unseen"]) > mean_auc(wrong, a["y_unseen"]) + 0.3


def test_hinge_loss_and_weight_decay_only_on_text(arrays):
    a = arrays
    cfg = ZeroShotConfig(loss="hinge", epochs=2)
    net, hist = fit_zeroshot(a["t_seen"], a["y_seen"], a["f_seen"], config=cfg)
    assert len(hist) == 2 and all(np.isfinite(hist))
    text_ids = {id(p) for p in net.text_parameters()}
    assert text_ids and all(id(p) in text_ids for p in net.text_fc.parameters())
    assert not any(id(p) in text_ids for p in net.image_fc.parameters())


def test_gradients_reach_both_networks():
    net = ZeroShotNet(7, 5, 3, ZeroShotConfig(kind="fc+conv"))
    s = net(torch.rand(4, 7), torch.randn(2, 5), torch.randn(2, 3, 4, 4))
    assert s.shape == (2, 4)
    s.sum().backward()
    for name in ("text_fc", "image_fc", "text_conv", "image_conv"):
        assert all(p.grad is not None and p.grad.abs().sum() > 0
                   for p in getattr(net, name).parameters()), name


def test_save_load_round_trip(tmp_path, arrays):
    a = arrays
    net, _ = fit_zeroshot(a["t_seen"], a["y_seen"], a["f_seen"], a["m_seen"],
                          ZeroShotConfig(kind="fc+conv", epochs=1))
    net.save(tmp_path / "m.pt")
    again = load_zeroshot(tmp_path / "m.pt")
    np.testing.assert_allclose(predict_scores(again, a["t_unseen"], a["f_unseen"], a["m_unseen"]),
                               predict_scores(net, a["t_unseen"], a["f_unseen"], a["m_unseen"]),
                               rtol=1e-5, atol=1e-6)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InvalidCheckpointError, match="bad.pt"):
        load_zeroshot(tmp_path / "bad.pt")


def test_bad_input():
    with pytest.raises(ConfigError, match="kind"):
        ZeroShotConfig(kind="attention")
    with pytest.raises(ConfigError, match="conv feature maps"):
        ZeroShotNet(7, feat_dim=5, map_channels=None, config=ZeroShotConfig(kind="conv"))
    net = ZeroShotNet(7, 5)
    with pytest.raises(InputShapeError, match="text features"):
        net(torch.rand(3, 8), torch.randn(2, 5))
    with pytest.raises(InputShapeError, match="penultimate"):
        net(torch.rand(3, 7), torch.randn(2, 6))
    with pytest.raises(ConfigError, match="labels"):
        fit_zeroshot(np.eye(3, 7), [0, 5], np.zeros((2, 5)))


def test_many_classes_do_not_collapse_to_the_prior():
    """With 1 positive in 120 targets, BCE is easiest to lower by shrinking every score to the
    prior; the shared bias (started at the log prior odds) leaves f_t and g_v free to learn."""
    rng = np.random.default_rng(1)
    s, v, d = 120, 300, 24
    text = (rng.random((s, v)) < 0.05) * rng.random((s, v))
    text /= np.linalg.norm(text, axis=1, keepdims=True) + 1e-12
    centres = text @ rng.normal(size=(v, d)) * 2
    y = np.repeat(np.arange(s), 6)
    x = (centres[y] + rng.normal(size=(len(y), d))).astype(np.float32)
    net, history = fit_zeroshot(text, y, x, config=ZeroShotConfig(epochs=15))
    scores = predict_scores(net, text, x)
    assert np.std(scores) > 0.5                       # not a constant
    assert mean_auc(scores, y) > 0.9
