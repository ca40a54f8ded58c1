"""NumPy reference losses: each returns ``(loss, dscores)``, the loss and its gradient with respect to the scores.

A loss ends the graph, so it needs no cache: the gradient comes back with the value, the way the
course's assignments write ``softmax_loss`` and ``svm_loss``. ``reduction`` is torch's:
"mean" (default) averages over the batch, "sum" adds, "none" returns the per-example losses
L_i (their gradient is then that of their sum).
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import ConfigError, InputShapeError


def _check(scores: np.ndarray, y: np.ndarray, reduction: str, name: str) -> np.ndarray:
    if scores.ndim != 2:
        raise InputShapeError(f"{name} expects scores (N, num_classes); got shape {tuple(scores.shape)}.")
    y = np.asarray(y)
    if y.shape != (scores.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise InputShapeError(
            f"{name} expects integer labels of shape ({scores.shape[0]},); got {y.dtype} {tuple(y.shape)}."
        )
    if y.size and (y.min() < 0 or y.max() >= scores.shape[1]):
        raise InputShapeError(
            f"{name}: labels must be in [0, {scores.shape[1] - 1}] for {scores.shape[1]} classes; "
            f"got labels from {y.min()} to {y.max()}."
        )
    if reduction not in ("mean", "sum", "none"):
        raise ConfigError(f"{name} reduction must be 'mean', 'sum' or 'none'; got {reduction!r}.")
    return y


def _reduce(losses: np.ndarray, dscores: np.ndarray, reduction: str):
    if reduction == "mean":
        return losses.mean(), dscores / len(losses)
    if reduction == "sum":
        return losses.sum(), dscores
    return losses, dscores


def softmax_cross_entropy(scores, y, reduction: str = "mean"):
    """Softmax cross-entropy L_i = -log(e^{s_y} / sum_j e^{s_j}), like ``F.cross_entropy`` (CS231n, "Softmax").

    Shifting the scores by their row maximum changes nothing mathematically and keeps exp() from
    overflowing (the course's "practical issue: numeric stability").
    """
    y = _check(scores, y, reduction, "softmax_cross_entropy")
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    losses = -log_probs[rows, y]
    dscores = np.exp(log_probs)                            # dL_i/ds = softmax(s) - onehot(y)
    dscores[rows, y] -= 1.0
    return _reduce(losses, dscores, reduction)


def multiclass_svm(scores, y, margin: float = 1.0, reduction: str = "mean"):
    """Multiclass SVM (hinge) loss L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin) (Weston & Watkins 1999; CS231n).

    ``F.multi_margin_loss`` computes the same sum divided by the number of classes.
    """
    y = _check(scores, y, reduction, "multiclass_svm")
    rows = np.arange(len(y))
    margins = np.maximum(0.0, scores - scores[rows, y][:, None] + margin)
    margins[rows, y] = 0.0                                 # the correct class is not a violation
    losses = margins.sum(axis=1)
    active = (margins > 0).astype(scores.dtype)
    dscores = active                                       # +1 for every violating class ...
    dscores[rows, y] = -active.sum(axis=1)                 # ... and -1 per violation on the true one
    return _reduce(losses, dscores, reduction)
