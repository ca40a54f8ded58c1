"""Classification losses: softmax cross-entropy (with label smoothing) and the multiclass SVM;
the L1 weight penalty."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError, InputShapeError

LOSSES = ("ce", "svm")


def _check(scores: torch.Tensor, targets: torch.Tensor) -> None:
    if scores.dim() != 2 or targets.dim() != 1 or len(scores) != len(targets):
        raise InputShapeError(
            f"a loss expects scores (N, C) and integer labels (N,); got {tuple(scores.shape)} "
            f"and {tuple(targets.shape)}. Flatten extra dimensions before the loss."
        )


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean softmax cross-entropy; smoothing mixes one-hot and uniform (Szegedy et al. 2016)."""
    _check(logits, targets)
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


def multiclass_svm_loss(scores: torch.Tensor, targets: torch.Tensor,
                        margin: float = 1.0) -> torch.Tensor:
    """Mean multiclass hinge loss sum_{j != y} max(0, s_j - s_y + 1) (Weston & Watkins 1999)."""
    _check(scores, targets)
    correct = scores.gather(1, targets[:, None])                   # (N, 1)
    margins = (scores - correct + margin).clamp(min=0)             # (N, C)
    # the j = y term is max(0, margin) = margin, not 0: zero it rather than subtract `margin`
    # so that the gradient through s_y stays exactly the count of violating classes
    margins = margins.scatter(1, targets[:, None], 0.0)
    return margins.sum(dim=1).mean()


def l1_penalty(params) -> torch.Tensor:
    """sum |w| over `params`: the lasso penalty (Tibshirani 1996), times l1 in the training loss."""
    return sum(p.abs().sum() for p in params)


def make_loss(name: str = "ce", label_smoothing: float = 0.0) -> Callable[..., torch.Tensor]:
    """The loss callable `(scores, targets) -> scalar` for a TrainConfig.loss name."""
    if name == "ce":
        return lambda scores, targets: cross_entropy(scores, targets, label_smoothing)
    if name == "svm":
        if label_smoothing:
            raise ConfigError("label_smoothing applies to the cross-entropy loss only; "
                              "got loss='svm'. Drop --label-smoothing or use --loss ce.")
        return multiclass_svm_loss
    raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
