"""A training callback that looks inside the network every N steps (CS231n, "Babysitting").

On a sampled step it records, per parameter tensor: the weight norm, the gradient norm and the
update/weight ratio ||w_after - w_before|| / ||w_before|| (the rule of thumb is about 1e-3: much
lower means the learning rate is too low, much higher too high); and per ReLU module: the mean and
std of its output and the fraction of dead units (zero for every image of the batch).

Cost: the weights are copied and forward hooks are attached only around the sampled steps, so
the steps in between run untouched. The first step is always sampled (a layer dead at init
matters most), but its update ratios are not flagged: that step is the init transient, not the
steady state the rule of thumb describes. Records go to ``diagnostics.jsonl`` (one JSON object
per sampled step) in `log_dir`, and to TensorBoard (scalars, weight and gradient histograms)
when ``torch.utils.tensorboard`` imports, or to the SummaryWriter passed as `tensorboard`.

Use: ``fit(..., callbacks=[TrainingMonitor("runs/NAME", every=50)])`` or
``train(cfg, callbacks=[TrainingMonitor(...)])``; ``monitor.flags`` lists what looked wrong.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

# The update/weight ratio band around the ~1e-3 rule of thumb (CS231n): an order of magnitude
# either side is normal variation between layers; beyond it the layer learns too slowly or fast.
RATIO_LOW, RATIO_HIGH = 1e-4, 1e-2
# A ReLU layer with at least this fraction of units dead on a whole batch is flagged
DEAD_FRACTION = 0.5


class TrainingMonitor:
    """Every `every` steps: per-layer weight/grad norms, update ratios, activations, dead ReLUs."""

    def __init__(self, log_dir: str | Path | None = None, every: int = 50,
                 tensorboard=True,   # True: own writer in log_dir if installed; or a writer
                 ratio_band: tuple[float, float] = (RATIO_LOW, RATIO_HIGH),
                 dead_fraction: float = DEAD_FRACTION):
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.every = max(int(every), 1)
        self.use_tensorboard = tensorboard
        self.ratio_band, self.dead_fraction = ratio_band, dead_fraction
        self.records: list[dict] = []
        self.flags: list[dict] = []       # one entry per (code, layer) the first time it fires
        self.losses: list[float] = []     # every step's training loss (cheap: one float)
        self._flagged: set = set()
        self._before: dict | None = None  # weights before the sampled step
        self._acts: dict = {}
        self._handles: list = []
        self._countdown = 0
        self._peak_lr = 0.0               # the highest learning rate sampled so far
        self._writer = None
        self.path = None

    # -- events ------------------------------------------------------------------------------
    def on_train_start(self, model, **_):
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.path = self.log_dir / "diagnostics.jsonl"
            if self.use_tensorboard is True:
                self._writer = _tensorboard_writer(self.log_dir / "tensorboard")
        if self.use_tensorboard not in (True, False, None):
            self._writer = self.use_tensorboard   # shared: its owner closes it
        self._prepare(model)  # the first step is always sampled

    def on_batch_end(self, step, loss, model, lr=None, **_):
        self.losses.append(float(loss))
        if self._before is not None:
            self._record(model, step, loss, lr)
        self._countdown -= 1
        if self._countdown <= 0:
            self._prepare(model)

    def on_train_end(self, **_):
        self._release()
        if self._writer is not None and self.use_tensorboard is True:
            self._writer.close()
        self._writer = None

    # -- sampling ----------------------------------------------------------------------------
    def _prepare(self, model: nn.Module) -> None:
        self._countdown = self.every
        self._before = {n: p.detach().clone() for n, p in model.named_parameters()
                        if p.requires_grad}
        self._acts = {}
        for name, m in model.named_modules():
            if isinstance(m, nn.ReLU):
                self._handles.append(m.register_forward_hook(self._activation_hook(name)))

    def _activation_hook(self, name: str):
        def hook(module, inputs, out):
            a = out.detach().float()
            alive = (a > 0).flatten(1).any(dim=0)            # (units,) any image activates it
            self._acts[name] = {"mean": float(a.mean()), "std": float(a.std()),
                                "dead_fraction": 1.0 - float(alive.float().mean())}
        return hook

    def _release(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles, self._before = [], None

    @torch.no_grad()
    def _record(self, model: nn.Module, step: int, loss: float, lr) -> None:
        layers = {}
        for name, p in model.named_parameters():
            if name not in self._before:
                continue
            w0 = self._before[name]
            w_norm = float(w0.norm())
            row = {"weight_norm": float(p.norm()),
                   "grad_norm": None if p.grad is None else float(p.grad.norm()),
                   "update_norm": float((p - w0).norm())}
            row["update_ratio"] = row["update_norm"] / w_norm if w_norm > 0 else None
            layers[name] = row
        record = {"step": step, "loss": float(loss), "lr": lr, "params": layers,
                  "activations": dict(self._acts)}
        self._release()
        n = len(self.flags)
        self._check(record)
        record["flags"] = self.flags[n:]  # raised at this step; the JSONL carries them too
        self.records.append(record)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            self._write_tensorboard(model, record)

    def _flag(self, code: str, where: str, step: int, message: str) -> None:
        if (code, where) in self._flagged:
            return
        self._flagged.add((code, where))
        self.flags.append({"code": code, "layer": where, "step": step, "message": message})

    def _check(self, record: dict) -> None:
        lo, hi = self.ratio_band
        step = record["step"]
        lr = record["lr"][0] if isinstance(record["lr"], (list, tuple)) else record["lr"]
        if lr is not None:
            self._peak_lr = max(self._peak_lr, float(lr))
        # a schedule that has annealed the rate to under a tenth of its peak (cosine, one-cycle,
        # step decay) makes small updates on purpose: "too low" would only be noise then
        annealed = lr is not None and float(lr) < 0.1 * self._peak_lr
        for name, row in record["params"].items():
            r = row["update_ratio"]
            # biases start at 0, so their ratios mean little; and the first step's update is the
            # init transient (gradients at chance-level loss), not the steady state the rule is for
            if r is None or not name.endswith("weight") or len(self.records) == 0:
                continue
            if not math.isfinite(r) or r > hi:
                self._flag("update_ratio_high", name, step,
                           f"{name}: update/weight ratio {r:.2g} (want ~1e-3): the learning rate "
                           "is too high for this layer")
            elif r < lo and (row["grad_norm"] or 0) > 0 and not annealed:
                self._flag("update_ratio_low", name, step,
                           f"{name}: update/weight ratio {r:.2g} (want ~1e-3): the learning rate "
                           "is too low for this layer")
        for name, act in record["activations"].items():
            if act["dead_fraction"] >= self.dead_fraction:
                self._flag("dead_relu", name, step,
                           f"{name}: {100 * act['dead_fraction']:.0f}% of the ReLU units are "
                           "dead (zero for the whole batch): a large negative bias, too high a "
                           "learning rate, or a bad init; no gradient flows through them")

    def _write_tensorboard(self, model: nn.Module, record: dict) -> None:
        w, step = self._writer, record["step"]
        w.add_scalar("loss/train", record["loss"], step)
        for name, row in record["params"].items():
            for k, v in row.items():
                if v is not None:
                    w.add_scalar(f"{k}/{name}", v, step)
        for name, act in record["activations"].items():
            for k, v in act.items():
                w.add_scalar(f"activation_{k}/{name}", v, step)
        for name, p in model.named_parameters():
            _histogram(w, f"weights/{name}", p, step)
            if p.grad is not None:   # still this step's: the loop zeroes them at the next one
                _histogram(w, f"grads/{name}", p.grad, step)


def _histogram(writer, tag: str, values: torch.Tensor, step: int) -> None:
    values = values.detach().float().cpu().flatten()
    # TensorBoard's histogram raises on NaN/inf; the norm scalars show that something diverged
    values = values[torch.isfinite(values)]
    if values.numel():
        # the default buckets end at +-1e20, where a diverging run's weights get to: then numpy's
        wide = {"bins": "auto"} if float(values.abs().max()) >= 1e20 else {}
        writer.add_histogram(tag, values, step, **wide)


def _tensorboard_writer(path: Path):
    """A SummaryWriter when TensorBoard is installed, else None (it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch.utils.tensorboard needs the tensorboard package
        return None
    return SummaryWriter(str(path))
