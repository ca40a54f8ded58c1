"""Reading the loss and accuracy curves (CS231n, "Babysitting the learning process").

Two inputs: the per-step training losses (from :class:`cnnlab.diagnose.TrainingMonitor`, or any
list) and the per-epoch metrics rows of a run (``History`` / ``metrics.jsonl``). Each diagnostic
is a :class:`Finding` with a stable ``code`` and a sentence saying what to try:

    loss_nonfinite   the loss became NaN/inf            (lower the LR, check the inputs)
    loss_exploding   the loss grew far above its best    (LR too high)
    loss_flat        the loss barely moved              (LR too low, or no gradient flow)
    loss_above_chance  the training loss ends worse than guessing (diverged: LR too high)
    overfitting      a big train/val accuracy gap, or val loss rising while train loss falls
    underfitting     low train accuracy and no gap      (more capacity, longer, higher LR)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# Loss more than 4x its best so far: the stop rule of the LR range test (Smith 2017, fastai)
EXPLODE_FACTOR = 4.0
# Over a whole short run the loss should fall by at least this fraction of its start
FLAT_FRACTION = 0.05
# train - val accuracy above this is the course's "big gap" (overfitting)
GAP = 0.10
# train accuracy below this with a small gap: the model does not even fit the training data
UNDERFIT_ACC = 0.90
# a gap under this counts as "no gap" for the underfitting call-out
SMALL_GAP = 0.05


@dataclass
class Finding:
    """One diagnostic: a stable code, its severity (error, warning or info) and advice."""

    code: str
    severity: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


def _smooth(values: list[float], beta: float = 0.9) -> list[float]:
    """Bias-corrected exponential moving average (as in Adam's moment estimates)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** i))
    return out


def diagnose_losses(losses, min_steps: int = 20) -> list[Finding]:
    """NaN/inf, exploding and flat training losses, step by step (CS231n lecture 6 hints)."""
    losses = [float(v) for v in losses]
    found: list[Finding] = []
    bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    if bad is not None:
        found.append(Finding(
            "loss_nonfinite", "error",
            f"the loss became {losses[bad]} at step {bad + 1}: the learning rate is probably too "
            "high (try 10x lower, or a warm-up); else look for NaN/inf in the inputs or a log/"
            "division by zero in a custom layer"))
        losses = losses[:bad]
    if not losses:
        return found
    smooth = _smooth(losses)
    best = min(smooth)
    if smooth[-1] > EXPLODE_FACTOR * best and smooth[-1] > smooth[0]:
        found.append(Finding(
            "loss_exploding", "error",
            f"the loss exploded: {smooth[-1]:.3g} at the end against a best of {best:.3g} "
            f"(over {EXPLODE_FACTOR:g}x): the learning rate is too high; try 3-10x lower "
            "(`cnnlab lr-find` suggests one)"))
    elif bad is None and len(losses) >= min_steps and smooth[-1] > (1 - FLAT_FRACTION) * smooth[0]:
        found.append(Finding(
            "loss_flat", "warning",
            f"the loss barely moved in {len(losses)} steps ({smooth[0]:.3g} -> {smooth[-1]:.3g}):"
            " the learning rate may be too low (try 3-10x higher), or gradients do not flow "
            "(dead ReLUs, a frozen layer); `cnnlab lr-find` shows where the loss starts to fall"))
    return found


def diagnose_history(rows, stop_reason: str | None = None,
                     chance_loss: float | None = None) -> list[Finding]:
    """Over-/under-fitting and LR hints from per-epoch metrics (CS231n's train/val gap).

    `chance_loss` (e.g. :func:`cnnlab.diagnose.expected_initial_loss`) enables the check that
    training ends better than guessing. The gap call-outs are skipped once the loss diverged:
    a train/val gap says nothing about a model that did not train.
    """
    rows = list(rows)
    found: list[Finding] = []
    losses = [r.get("train_loss") for r in rows if r.get("train_loss") is not None]
    nonfinite = [r for r in rows for k in ("train_loss", "val_loss")
                 if r.get(k) is not None and not math.isfinite(r[k])]
    if stop_reason == "nonfinite_loss" or nonfinite:
        found.append(Finding(
            "loss_nonfinite", "error",
            "the loss became NaN/inf and training stopped (the last good checkpoint is kept): "
            "lower the learning rate 10x or add a warm-up, and check the inputs for NaN/inf"))
    finite = [v for v in losses if math.isfinite(v)]
    if len(finite) >= 2:
        if finite[-1] > 1.5 * min(finite) and finite[-1] > finite[0]:
            found.append(Finding(
                "loss_exploding", "error",
                f"the training loss rose from a best of {min(finite):.3g} to {finite[-1]:.3g}: "
                "the learning rate is too high for this stage; lower it or use a decaying "
                "schedule"))
        elif finite[-1] > (1 - FLAT_FRACTION) * finite[0]:
            found.append(Finding(
                "loss_flat", "warning",
                f"the training loss barely fell over {len(finite)} epochs ({finite[0]:.3g} -> "
                f"{finite[-1]:.3g}): the learning rate may be too low; try 3-10x higher"))
    if chance_loss is not None and finite and finite[-1] > 1.5 * chance_loss:
        found.append(Finding(
            "loss_above_chance", "error",
            f"the training loss ends at {finite[-1]:.3g}, worse than guessing ({chance_loss:.3g}):"
            " training diverged, most likely because the learning rate is too high (try 10x "
            "lower; `cnnlab lr-find` suggests one)"))
    if not rows or any(f.severity == "error" for f in found):
        return found
    last = rows[-1]
    train_acc, val_acc = last.get("train_acc1"), last.get("val_acc1")
    if train_acc is not None and val_acc is not None:
        gap = train_acc - val_acc
        if gap > GAP:
            found.append(Finding(
                "overfitting", "warning",
                f"overfitting: train accuracy {100 * train_acc:.1f}% vs validation "
                f"{100 * val_acc:.1f}% (a {100 * gap:.1f}-point gap): add regularisation "
                "(weight decay, dropout, augmentation), get more data, or stop earlier"))
        elif train_acc < UNDERFIT_ACC and gap < SMALL_GAP:
            found.append(Finding(
                "underfitting", "warning",
                f"underfitting: train accuracy only {100 * train_acc:.1f}% with validation "
                f"close behind ({100 * val_acc:.1f}%): train longer, use a bigger model, raise "
                "the learning rate or lower the regularisation"))
    vals = [r.get("val_loss") for r in rows]
    if len(rows) >= 3 and all(v is not None and math.isfinite(v) for v in vals) \
            and not any(f.code == "overfitting" for f in found):
        k = min(range(len(vals)), key=vals.__getitem__)
        tr = [r.get("train_loss") for r in rows]
        if k < len(vals) - 2 and vals[-1] > vals[k] * 1.1 and None not in (tr[-1], tr[k]) \
                and tr[-1] < tr[k]:
            found.append(Finding(
                "overfitting", "warning",
                f"overfitting: validation loss is up from {vals[k]:.3g} (epoch {k + 1}) to "
                f"{vals[-1]:.3g} while the training loss kept falling; the best epoch was "
                f"{k + 1}: use early stopping or more regularisation"))
    return found
