"""Classification metrics: top-k accuracy and error (ILSVRC's top-1/top-5), confusion matrix,
per-class precision/recall, and the most confidently wrong predictions."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from cnnlab.errors import ConfigError, InputShapeError


def _check(scores: torch.Tensor, targets: torch.Tensor) -> None:
    if scores.dim() != 2 or targets.dim() != 1 or len(scores) != len(targets):
        raise InputShapeError(
            f"metrics expect scores (N, C) and labels (N,); got {tuple(scores.shape)} and "
            f"{tuple(targets.shape)}"
        )


def topk_correct(scores: torch.Tensor, targets: torch.Tensor,
                 ks: Iterable[int] = (1, 5)) -> dict[int, int]:
    """Per k, how many rows have the label among their k best scores (Russakovsky et al. 2015)."""
    _check(scores, targets)
    ks = tuple(ks)
    num_classes = scores.shape[1]
    bad = [k for k in ks if not 1 <= k <= num_classes]
    if bad:
        raise ConfigError(f"top-k needs 1 <= k <= number of classes ({num_classes}); got k={bad}. "
                          "Top-5 is meaningful only with more than 5 classes.")
    if not ks:
        return {}
    top = scores.topk(max(ks), dim=1).indices                  # (N, kmax), best first
    hit = top == targets[:, None]                              # (N, kmax); at most one True a row
    return {k: int(hit[:, :k].any(dim=1).sum()) for k in ks}


def topk_accuracy(scores: torch.Tensor, targets: torch.Tensor,
                  ks: Iterable[int] = (1, 5)) -> dict[int, float]:
    """Fraction of rows whose label is among the top k scores, for each k."""
    n = len(targets)
    return {k: c / n if n else float("nan") for k, c in topk_correct(scores, targets, ks).items()}


def topk_error(scores: torch.Tensor, targets: torch.Tensor,
               ks: Iterable[int] = (1, 5)) -> dict[int, float]:
    """1 - top-k accuracy, as in the ILSVRC tables (AlexNet: 37.5% top-1, 17.0% top-5 error)."""
    return {k: 1.0 - a for k, a in topk_accuracy(scores, targets, ks).items()}


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor,
                     num_classes: int | None = None) -> torch.Tensor:
    """(C, C) int64 counts: row = true class, column = predicted class.

    `predictions` are class indices (N,) or scores (N, C), which are reduced by argmax.
    """
    if predictions.dim() == 2:
        _check(predictions, targets)
        num_classes = num_classes or predictions.shape[1]
        predictions = predictions.argmax(dim=1)
    if predictions.shape != targets.shape or targets.dim() != 1:
        raise InputShapeError(f"confusion_matrix expects predictions and labels of shape (N,); "
                              f"got {tuple(predictions.shape)} and {tuple(targets.shape)}")
    if num_classes is None:
        num_classes = int(max(predictions.max(), targets.max())) + 1 if len(targets) else 0
    predictions, targets = predictions.long().cpu(), targets.long().cpu()
    if len(targets) and (min(predictions.min(), targets.min()) < 0
                         or max(predictions.max(), targets.max()) >= num_classes):
        raise InputShapeError(f"class indices must lie in [0, {num_classes}); got "
                              f"{int(min(predictions.min(), targets.min()))}.."
                              f"{int(max(predictions.max(), targets.max()))}")
    flat = targets * num_classes + predictions
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def precision_recall(cm: torch.Tensor) -> dict[str, list[float]]:
    """Per-class precision, recall, F1 and support from a (C, C) confusion matrix (rows = truth).

    A class never predicted (or never present) gets 0 for the undefined ratio, as scikit-learn's
    ``zero_division=0``, so a silent class shows up as a zero rather than disappearing.
    """
    if cm.dim() != 2 or cm.shape[0] != cm.shape[1]:
        raise InputShapeError(f"precision_recall expects a square (C, C) confusion matrix; "
                              f"got {tuple(cm.shape)}")
    cm = cm.double()
    hits = cm.diagonal()
    predicted, actual = cm.sum(dim=0), cm.sum(dim=1)          # column sums, row sums
    precision = torch.where(predicted > 0, hits / predicted.clamp(min=1), torch.zeros_like(hits))
    recall = torch.where(actual > 0, hits / actual.clamp(min=1), torch.zeros_like(hits))
    both = precision + recall
    f1 = torch.where(both > 0, 2 * precision * recall / both.clamp(min=1e-300),
                     torch.zeros_like(hits))
    return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
            "support": [int(v) for v in actual.tolist()]}


def confident_errors(probs: torch.Tensor, targets: torch.Tensor, n: int = 16) -> list[dict]:
    """The `n` wrong top-1 predictions with the highest probability, most confident first.

    Each entry: index (row in `probs`), label, predicted, probability (of the predicted class)
    and p_label (what the model gave the true class).
    """
    _check(probs, targets)
    predicted = probs.argmax(dim=1)
    wrong = (predicted != targets).nonzero().flatten()
    conf = probs[wrong, predicted[wrong]]
    order = conf.argsort(descending=True, stable=True)[:max(n, 0)]
    return [{"index": int(wrong[i]), "label": int(targets[wrong[i]]),
             "predicted": int(predicted[wrong[i]]), "probability": float(conf[i]),
             "p_label": float(probs[wrong[i], targets[wrong[i]]])} for i in order]
