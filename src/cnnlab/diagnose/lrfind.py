"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks"; fastai's lr_find).

Train for a few hundred steps while the learning rate grows exponentially from `start_lr` to
`end_lr`, record the smoothed loss, and stop once it exceeds 4x the best seen (it has diverged).
Two candidates come out of the curve: the rate where the smoothed loss falls fastest (the
steepest negative slope against log LR) and the rate of the lowest loss divided by 10 (fastai's
"min/10": the minimum is already at the edge of divergence). The suggestion is the steepest point
when it lies within two decades below the minimum, else min/10: a steepest fall far to the left
is the loss settling from a poor init (or the moving average's lag), not the useful range. The
model's weights are restored afterwards, so the test can run before the real training.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import ConfigError, DataError
from cnnlab.train.losses import make_loss

# Smith 2017 and fastai stop once the (smoothed) loss is 4x the best so far. We also stop on a
# single raw loss of 4 * 4 = 16x the best: the 50-step average can hide a blow-up after which the
# ReLUs die and the loss sits at chance level, never reaching 4x (seen with LeNet-5 on digits).
DIVERGE_FACTOR = 4.0
# the exponential moving average of the loss: 0.98 as in fastai, i.e. about 50 steps of memory;
# a bias correction (as in Adam) keeps the first values unbiased
SMOOTH_BETA = 0.98


@dataclass
class LRFindResult:
    """The sweep: rates, raw and smoothed losses, the suggested rates and why it stopped."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested_lr: float | None          # steepest_lr, or min_lr_div10 (see the module notes)
    steepest_lr: float | None           # steepest descent of the smoothed loss
    min_lr_div10: float | None          # lowest smoothed loss's rate / 10
    stop_reason: str                    # "diverged", "nonfinite" or "end_lr"
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"suggested_lr": self.suggested_lr, "steepest_lr": self.steepest_lr,
                "min_lr_div10": self.min_lr_div10,
                "stop_reason": self.stop_reason, "steps": len(self.lrs),
                "lrs": self.lrs, "losses": self.losses, "smoothed": self.smoothed, **self.extra}


def lr_find(model: nn.Module, batches, optimizer: torch.optim.Optimizer | None = None,
            start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100,
            loss: str = "ce", diverge: float = DIVERGE_FACTOR, beta: float = SMOOTH_BETA,
            restore: bool = True) -> LRFindResult:
    """Exponential LR sweep with early stop at divergence (Smith 2017; fastai's lr_find).

    `batches` is re-iterated as often as needed; `optimizer` defaults to SGD with momentum 0.9.
    With `restore` the model's and optimizer's state are put back after the sweep.
    """
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"lr_find needs 0 < start_lr < end_lr (--start-lr, --end-lr); got "
                          f"{start_lr} and {end_lr}")
    if num_steps < 2:
        raise ConfigError(f"lr_find needs at least 2 steps; got {num_steps}. 100-300 is usual")
    if optimizer is None:
        optimizer = torch.optim.SGD(model.parameters(), lr=start_lr, momentum=0.9)
    saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())) \
        if restore else None
    device = next(model.parameters()).device
    loss_fn = make_loss(loss)
    factor = (end_lr / start_lr) ** (1 / (num_steps - 1))
    lrs, losses, smoothed = [], [], []
    best, avg, reason = math.inf, 0.0, "end_lr"
    model.train()
    it = iter(batches)
    try:
        for i in range(num_steps):
            try:
                x, y = next(it)
            except StopIteration:
                it = iter(batches)
                try:
                    x, y = next(it)
                except StopIteration:
                    raise DataError("lr_find got no batches; check the data") from None
            lr = start_lr * factor ** i
            for g in optimizer.param_groups:
                g["lr"] = lr
            x, y = x.to(device), y.to(device)
            out = loss_fn(model(x).float(), y)
            value = float(out.detach())
            if not math.isfinite(value):
                reason = "nonfinite"
                break
            optimizer.zero_grad(set_to_none=True)
            out.backward()
            optimizer.step()
            avg = beta * avg + (1 - beta) * value
            smooth = avg / (1 - beta ** (i + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(smooth)
            best = min(best, smooth)
            if smooth > diverge * best or value > diverge * diverge * best:
                reason = "diverged"
                break
    finally:
        if saved is not None:
            model.load_state_dict(saved[0])
            optimizer.load_state_dict(saved[1])
    steep, min10 = suggest(lrs, smoothed)
    pick = steep if steep is not None and min10 is not None and steep >= min10 / 10 else min10
    return LRFindResult(lrs, losses, smoothed, pick, steep, min10, reason)


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float | None, float | None]:
    """(steepest-descent LR, min-loss LR / 10) of a sweep; None where the sweep is too short.

    The slope is taken against log(lr) with central differences, ignoring the first 10% of the
    points (the moving average is still settling there) and the points after the minimum (the
    loss is diverging there, so a steep fall cannot be trusted).
    """
    if len(lrs) < 5:
        return None, None
    k = min(range(len(smoothed)), key=smoothed.__getitem__)
    min10 = lrs[k] / 10
    lo = max(1, len(lrs) // 10)
    hi = min(k, len(lrs) - 2)
    if hi <= lo:
        return None, min10
    logs = [math.log(v) for v in lrs]
    slopes = {i: (smoothed[i + 1] - smoothed[i - 1]) / (logs[i + 1] - logs[i - 1])
              for i in range(lo, hi + 1)}
    i = min(slopes, key=slopes.get)
    return (lrs[i] if slopes[i] < 0 else None), min10


def plot_lr_find(result: LRFindResult, path: str | Path, title: str = "LR range test") -> Path:
    """Loss against learning rate on a log axis, suggestions marked, as a PNG (Smith 2017)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        ax.plot(result.lrs, result.losses, color="0.75", lw=1, label="loss")
        ax.plot(result.lrs, result.smoothed, color="C0", lw=2, label="smoothed loss")
        if result.steepest_lr is not None:
            ax.axvline(result.steepest_lr, color="C3", ls="--",
                       label=f"steepest: {result.steepest_lr:.2g}")
        if result.min_lr_div10 is not None:
            ax.axvline(result.min_lr_div10, color="C2", ls=":",
                       label=f"min / 10: {result.min_lr_div10:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        if result.smoothed:  # keep the diverging tail from squashing the useful part
            top = max(result.smoothed[0], min(result.smoothed)) * 1.5
            ax.set_ylim(min(min(result.losses), min(result.smoothed)) * 0.9, top)
        if result.suggested_lr is not None:
            ax.plot([result.suggested_lr], [_interp(result, result.suggested_lr)], "o",
                    color="C1", label=f"suggested: {result.suggested_lr:.2g}")
        ax.set_title(f"{title} (stopped: {result.stop_reason})")
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def _interp(result: LRFindResult, lr: float) -> float:
    """The smoothed loss at `lr` (nearest recorded rate), to place a marker on the curve."""
    i = min(range(len(result.lrs)), key=lambda j: abs(math.log(result.lrs[j] / lr)))
    return result.smoothed[i]


def run_lr_find(model: str = "lenet5", data=None, optimizer: str = "momentum",
                batch_size: int = 64, start_lr: float = 1e-7, end_lr: float = 10.0,
                num_steps: int = 100, loss: str = "ce", image_size: int | None = None,
                seed: int = 0, plot: str | Path | None = None) -> LRFindResult:
    """The range test on a fresh zoo model and its data; what `cnnlab lr-find` runs (Smith 2017).

    `optimizer` is a :func:`cnnlab.train.optim.build_optimizer` name (no weight decay: the test
    measures how the loss answers to the rate alone). `plot` writes the PNG there.
    """
    from cnnlab.diagnose.data import model_and_loaders
    from cnnlab.train.optim import build_optimizer

    net, loaders = model_and_loaders(model, data, image_size, batch_size=batch_size, seed=seed)
    opt = build_optimizer(net, optimizer, lr=start_lr, weight_decay=0.0)
    with torch.random.fork_rng():  # dropout draws repeatable without touching the caller's RNG
        torch.manual_seed(seed)
        result = lr_find(net, loaders.train, opt, start_lr=start_lr, end_lr=end_lr,
                         num_steps=num_steps, loss=loss, restore=False)
    result.extra.update(model=model, data=loaders.info.get("name"), optimizer=optimizer,
                        batch_size=batch_size, start_lr=start_lr, end_lr=end_lr)
    if plot is not None:
        result.extra["plot"] = str(plot_lr_find(result, plot, title=f"LR range test: {model}"))
    return result
