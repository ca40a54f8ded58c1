import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cnnlab.errors import InputShapeError
from cnnlab.zeroshot.baselines import BASELINES, CCAJointSpace, RidgeTextToWeights


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_beat_chance_on_unseen(arrays, name):
    a = arrays
    b = BASELINES[name]().fit(a["t_seen"], a["y_seen"], a["f_seen"])
    s = b.scores(a["t_unseen"], a["f_unseen"])
    assert s.shape == (len(a["y_unseen"]), 6)
    auc = np.mean([roc_auc_score(a["y_unseen"] == k, s[:, k]) for k in range(6)])
    assert auc > 0.75


def test_ridge_is_the_closed_form_solution(arrays):
    """The text map M minimises ||T M - W||^2 + alpha ||M||^2: its gradient vanishes."""
    a = arrays
    r = RidgeTextToWeights(alpha_t=0.3).fit(a["t_seen"], a["y_seen"], a["f_seen"])
    t = a["t_seen"].astype(np.float64)
    m = r.state["map"]
    x = np.hstack([(a["f_seen"] - r.state["mean"]) / r.state["std"],
                   np.ones((len(a["y_seen"]), 1))])
    y = 2.0 * np.eye(len(t))[a["y_seen"]] - 1
    w = np.linalg.solve(x.T @ x + r.alpha_w * np.eye(x.shape[1]), x.T @ y).T
    grad = t.T @ (t @ m - w) + 0.3 * m
    assert np.abs(grad).max() < 1e-8


def test_cca_directions_are_correlated(arrays):
    a = arrays
    c = CCAJointSpace(dim=4, reg=1e-3).fit(a["t_seen"], a["y_seen"], a["f_seen"])
    zx = (a["f_seen"] - c.state["x_mean"]) @ c.state["px"]
    zt = ((a["t_seen"][a["y_seen"]] - c.state["t_mean"]) @ c.state["basis"].T) @ c.state["pt"]
    corr = [np.corrcoef(zx[:, i], zt[:, i])[0, 1] for i in range(4)]
    assert min(corr) > 0.8 and corr[0] >= corr[-1] - 1e-6


def test_bad_shapes():
    with pytest.raises(InputShapeError):
        RidgeTextToWeights().fit(np.eye(2), [0, 1, 0], np.zeros((2, 3)))
