"""Sanity checks before a long run (CS231n, "Babysitting the learning process").

1. The initial loss, with small random weights and no regularisation, should be what chance
   predicts: ln(C) for softmax cross-entropy (every class gets probability 1/C) and C - 1 for the
   multiclass SVM with margin 1 (all scores near 0, so each of the C - 1 wrong classes violates
   the margin by about 1). A value far off means a bug or a bad initialisation.
2. The model should overfit a tiny subset (about 20 images) to 100% training accuracy within a
   few hundred steps, without regularisation. If it cannot, something is broken before the data
   even matters: the loss, the labels, the learning rate or the architecture.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.train.losses import make_loss

# Relative tolerance of the initial-loss check. With a sane init the logits have a std of a few
# tenths at most, which moves the loss by well under 10%; 25% leaves room for that and still
# catches a last layer scaled up by 10 or a wrong class count.
INITIAL_LOSS_TOLERANCE = 0.25


def expected_initial_loss(num_classes: int, loss: str = "ce") -> float:
    """Loss at chance level: ln(C) for softmax, C - 1 for the margin-1 SVM (CS231n, lecture 3)."""
    if num_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes; got {num_classes}")
    if loss == "ce":
        return math.log(num_classes)
    if loss == "svm":
        return float(num_classes - 1)
    raise ConfigError(f"unknown loss {loss!r}; choose 'ce' or 'svm'")


@dataclass
class InitialLossCheck:
    """The measured initial loss, what chance predicts, and a warning when they disagree."""

    loss: float
    expected: float
    num_classes: int
    outputs: int
    score_std: float
    ok: bool
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def check_initial_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       num_classes: int | None = None, loss: str = "ce",
                       tolerance: float = INITIAL_LOSS_TOLERANCE) -> InitialLossCheck:
    """Compare the untrained model's loss on (x, y) with chance level (CS231n sanity check).

    `num_classes` is the number of classes in the data (default: the model's output count); the
    forward runs in eval mode (no dropout) and the model's mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        scores = model(x).float()                                    # (N, outputs)
    finally:
        model.train(was_training)
    if scores.dim() != 2:
        raise InputShapeError(f"the model should return scores (N, C); got {tuple(scores.shape)}")
    outputs = scores.shape[1]
    c = num_classes or outputs
    if len(y) and int(y.max()) >= outputs:
        raise ConfigError(f"label {int(y.max())} is out of range for a model with {outputs} "
                          f"outputs; build the model with num_classes={c}")
    value = float(make_loss(loss)(scores, y))
    expected = expected_initial_loss(c, loss)
    std = float(scores.std()) if scores.numel() > 1 else 0.0
    ok = math.isfinite(value) and abs(value - expected) <= tolerance * expected
    if ok:
        msg = (f"initial loss {value:.3f} is close to the expected {expected:.3f} "
               f"({'ln' if loss == 'ce' else 'C - 1 with'} C = {c}): the init looks sane")
    else:
        why = []
        if outputs != c:
            why.append(f"the model has {outputs} outputs but the data has {c} classes (use "
                       f"num_classes={c} or model.reset_classifier({c}))")
        if std > 1.0:
            why.append(f"the scores are large at init (std {std:.2f}; chance needs them near "
                       "0): the last layer's weights are too big, or the inputs are not "
                       "standardised")
        if not math.isfinite(value):
            why.append("the loss is not finite: check the inputs for NaN/inf")
        if not why:
            why.append("check the labels (off by one, shuffled against the images), the loss "
                       "(it should get raw scores, not probabilities) and that no regularisation "
                       "term is included")
        msg = (f"initial loss {value:.3f} is far from the expected {expected:.3f} for {c} "
               f"classes with small random weights; likely cause: " + "; ".join(why))
    return InitialLossCheck(value, expected, c, outputs, std, ok, msg)


@dataclass
class OverfitResult:
    """Whether the model fit a tiny subset, how fast, and a sentence to print."""

    reached: bool
    accuracy: float
    loss: float
    steps: int
    images: int
    message: str
    losses: list

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("losses")
        return d


def pick_subset(y: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of `n` samples taken round-robin over the classes (so every class appears)."""
    per_class = [torch.nonzero(y == c).flatten() for c in torch.unique(y)]
    picked, i = [], 0
    while len(picked) < min(n, len(y)):
        for idx in per_class:
            if i < len(idx) and len(picked) < n:
                picked.append(int(idx[i]))
        i += 1
    return torch.tensor(picked, dtype=torch.long)


def overfit_small(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int = 20,
                  max_steps: int = 300, lr: float = 1e-3, loss: str = "ce",
                  target: float = 1.0, seed: int = 0) -> OverfitResult:
    """Train a copy of `model` on `n` images until 100% train accuracy (CS231n sanity check).

    Full-batch Adam (Kingma & Ba 2015) without weight decay: the aim is to memorise, so nothing
    should hold the model back. The model passed in is not changed.
    """
    if n < 1:
        raise ConfigError(f"overfit_small needs at least 1 image; got n={n}")
    idx = pick_subset(y, n)
    xs, ys = x[idx], y[idx]
    net = copy.deepcopy(model)
    net.train()
    loss_fn = make_loss(loss)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses, acc, value = [], 0.0, float("nan")
    with torch.random.fork_rng():  # dropout draws seeded here do not disturb the caller's RNG
        torch.manual_seed(seed)
        step = 0
        for step in range(1, max_steps + 1):
            scores = net(xs)
            out = loss_fn(scores.float(), ys)
            value = float(out.detach())
            losses.append(value)
            if not math.isfinite(value):
                break
            opt.zero_grad(set_to_none=True)
            out.backward()
            opt.step()
            if step % 10 == 0 or step == max_steps:  # accuracy in eval mode: dropout off
                acc = _accuracy(net, xs, ys)
                if acc >= target:
                    break
    reached = acc >= target
    if reached:
        msg = (f"overfit {len(ys)} images to {100 * acc:.0f}% train accuracy in {step} steps "
               f"(loss {value:.4f}): the model, loss and labels can learn")
    else:
        msg = (f"could not overfit {len(ys)} images: {100 * acc:.0f}% train accuracy after "
               f"{step} steps (loss {value:.4f}). A working setup memorises 20 images easily; "
               "check that labels match images, that the loss gets raw scores, that the inputs "
               "are standardised, and try a different learning rate (--lr)")
    return OverfitResult(reached, acc, value, step, len(ys), msg, losses)


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    try:
        return float((model(x).argmax(1) == y).float().mean())
    finally:
        model.train()


# images for the initial-loss estimate: enough that the mean loss is within ~1% of its
# expectation at chance level, few enough to be instant on a CPU
LOSS_SAMPLE = 256


def run_sanity(model: str = "lenet5", data=None, loss: str = "ce", images: int = 20,
               max_steps: int = 300, lr: float = 1e-3, image_size: int | None = None,
               seed: int = 0) -> dict:
    """Both CS231n checks on a fresh zoo model and its data; what `cnnlab sanity` prints.

    Returns a dict: model, data, classes, ``initial_loss`` and ``overfit`` (each a check's
    fields), ``ok`` (both passed) and ``verdict`` (a sentence).
    """
    from cnnlab.diagnose.data import model_and_loaders, training_tensors

    net, loaders = model_and_loaders(model, data, image_size, seed=seed)
    y_all = loaders.train.y
    g = torch.Generator().manual_seed(seed)
    sample = torch.randperm(len(y_all), generator=g)[:LOSS_SAMPLE]
    x, y = training_tensors(loaders, sample)
    init = check_initial_loss(net, x, y, num_classes=len(loaders.classes), loss=loss)
    xs, ys = training_tensors(loaders, pick_subset(y_all, images))
    fit = overfit_small(net, xs, ys, n=images, max_steps=max_steps, lr=lr, loss=loss, seed=seed)
    ok = init.ok and fit.reached
    if ok:
        verdict = "PASS: the initial loss is at chance level and the model overfits a tiny subset"
    else:
        failed = [n for n, good in (("initial loss", init.ok), ("overfit", fit.reached))
                  if not good]
        verdict = f"WARN: {' and '.join(failed)} check failed; see the messages above"
    return {"model": model, "data": loaders.info.get("name"), "classes": len(loaders.classes),
            "loss_name": loss, "initial_loss": init.to_dict(), "overfit": fit.to_dict(),
            "ok": ok, "verdict": verdict}
