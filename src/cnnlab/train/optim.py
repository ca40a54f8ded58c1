"""Optimisers by name (torch.optim) with L2 decay on weights only, and learning-rate schedules.

Names follow the update rules as taught (CS231n lecture 7): ``sgd`` (vanilla), ``momentum``
(Polyak heavy ball, as in Krizhevsky et al. 2012), ``nesterov`` (Sutskever et al. 2013),
``adagrad`` (Duchi et al. 2011), ``rmsprop`` (Tieleman & Hinton 2012), ``adadelta`` (Zeiler 2012),
``adam`` (Kingma & Ba 2015) and ``adamw`` (decoupled decay, Loshchilov & Hutter 2019).

Schedules are a per-step multiplier on the base rate, computed in closed form so they are easy to
check by hand and to resume: ``constant``, ``step``, ``plateau`` (AlexNet's "divide by 10 when the
validation error stops improving"), ``cosine`` (Loshchilov & Hutter 2017, no restarts) and
``onecycle`` (Smith & Topin 2018), each optionally after a linear warm-up (Goyal et al. 2017).
"""

from __future__ import annotations

import difflib
import math

import torch
from torch import nn

from cnnlab.errors import ConfigError

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw")
SCHEDULES = ("constant", "step", "plateau", "cosine", "onecycle")

# Normalisation layers whose affine scale/shift should not be pulled towards 0 by L2 decay.
_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def _unknown(kind: str, name: str, valid) -> ConfigError:
    near = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return ConfigError(f"unknown {kind} {name!r}{hint} Choose one of {', '.join(valid)}.")


def penalised_weights(model: nn.Module) -> list[torch.Tensor]:
    """The trainable conv/linear weights: what L2 decay and the L1 penalty act on (no biases or
    norm-layer parameters)."""
    norm_params = {id(p) for m in model.modules() if isinstance(m, _NORM_TYPES)
                   for p in m.parameters(recurse=False)}
    return [p for p in model.parameters()
            if p.requires_grad and p.ndim > 1 and id(p) not in norm_params]


def param_groups(model: nn.Module, weight_decay: float,
                 decay_bias_and_norm: bool = False) -> list[dict]:
    """Two parameter groups: decayed conv/linear weights, and undecayed biases and norm parameters.

    Decaying a BatchNorm scale or a bias only fights the normalisation (Goyal et al. 2017 §5.1 and
    common practice since); set `decay_bias_and_norm` to decay everything, as in AlexNet.
    """
    weights = {id(p) for p in penalised_weights(model)}
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        skip = id(p) not in weights
        (no_decay if skip and not decay_bias_and_norm else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


_default_groups = param_groups  # build_optimizer's argument of the same name shadows it


def given_groups(model: nn.Module, groups, lr: float, weight_decay: float) -> list[dict]:
    """Copies of caller-made parameter groups, with `lr` and `weight_decay` where a group has none.

    Every tensor must be a parameter of `model`: groups built from another model (a copy, or
    the model before it was rebuilt) would train nothing that the run saves.
    """
    own = {id(p) for p in model.parameters()}
    out, foreign = [], 0
    for g in groups:
        if not isinstance(g, dict) or "params" not in g:
            raise ConfigError(f"each parameter group must be a dict with 'params'; got {g!r:.80}")
        params = [g["params"]] if isinstance(g["params"], torch.Tensor) else list(g["params"])
        foreign += sum(id(p) not in own for p in params)
        out.append({"lr": lr, "weight_decay": weight_decay, **g, "params": params})
    if foreign:
        raise ConfigError(f"{foreign} tensor(s) in param_groups are not parameters of the model "
                          "being trained; build the groups from that model (transfer.prepare "
                          "returns the model with its groups)")
    if not any(out_g["params"] for out_g in out):
        raise ConfigError("param_groups hold no parameters; unfreeze at least the classifier")
    return out


def build_optimizer(model: nn.Module, name: str = "momentum", lr: float = 0.05,
                    weight_decay: float = 0.0, momentum: float | None = None,
                    nesterov: bool = False, decay_bias_and_norm: bool = False,
                    param_groups: list[dict] | None = None) -> torch.optim.Optimizer:
    """A torch.optim optimiser by update-rule name, with weight decay on weights only by default.

    `param_groups` (e.g. discriminative rates from :func:`cnnlab.transfer.prepare`) replaces the
    default decay/no-decay grouping; each group keeps its own 'lr' and 'weight_decay', and
    `lr`/`weight_decay` fill in where a group has none (`decay_bias_and_norm` is then unused).
    """
    groups = (given_groups(model, param_groups, lr, weight_decay) if param_groups is not None
              else _default_groups(model, weight_decay, decay_bias_and_norm))
    if name in ("sgd", "momentum", "nesterov"):
        # momentum=None means the rule's own default: 0.9 (Sutskever et al. 2013) or none for sgd
        m = momentum if momentum is not None else (0.0 if name == "sgd" else 0.9)
        use_nesterov = name == "nesterov" or nesterov
        if use_nesterov and m == 0:
            raise ConfigError(f"Nesterov momentum needs momentum > 0; got momentum={m}. "
                              "Drop --momentum or set it to 0.9.")
        return torch.optim.SGD(groups, lr=lr, momentum=m, nesterov=use_nesterov)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr)
    if name == "rmsprop":
        # alpha 0.99: the squared-gradient decay rate of the lecture and of torch
        return torch.optim.RMSprop(groups, lr=lr, alpha=0.99, momentum=momentum or 0.0)
    if name == "adadelta":
        return torch.optim.Adadelta(groups, lr=lr)  # Zeiler's rule has no rate: use lr=1.0
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)      # decay here is L2 added to the gradient
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)     # decay here is decoupled from the moments
    raise _unknown("optimizer", name, OPTIMIZERS)


class LRSchedule:
    """Sets each group's lr to base_lr * factor(step) before every batch; see the module docstring.

    Each group has its own base rate (its lr when the schedule is made), so discriminative rates
    keep their ratios all through training; the cosine floor `min_lr` applies to the group with
    the largest base rate and proportionally to the others.

    Call :meth:`step_batch` after each optimiser step and :meth:`step_epoch` with the validation
    metric (higher is better) after each epoch. The state is a few numbers (see state_dict).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, name: str, epochs: int,
                 steps_per_epoch: int, warmup_epochs: float = 0.0, step_epochs: int = 30,
                 decay: float = 0.1, min_lr: float = 0.0, patience: int = 3,
                 milestones=()):
        if name not in SCHEDULES:
            raise _unknown("schedule", name, SCHEDULES)
        self.optimizer, self.name = optimizer, name
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = epochs * self.steps_per_epoch
        self.warmup_steps = round(warmup_epochs * self.steps_per_epoch)
        self.step_epochs, self.decay, self.patience = step_epochs, decay, patience
        # "step" with milestones (epochs, may be fractional): decay at these batch indices
        self.milestone_steps = [round(m * self.steps_per_epoch) for m in milestones]
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.min_ratio = min_lr / max(self.base_lrs) if max(self.base_lrs) > 0 else 0.0
        self.step = 0                 # batches taken so far
        self.plateau_scale = 1.0
        self.best: float | None = None
        self.bad_epochs = 0
        self._apply()

    def factor(self, step: int) -> float:
        """The lr multiplier for the batch with global index `step` (0-based)."""
        W, T = self.warmup_steps, self.total_steps
        if self.name == "onecycle":
            return self._onecycle(step)
        warm = (step + 1) / W if step < W else 1.0  # (t+1)/W: the first batch already moves
        if self.name == "constant":
            main = 1.0
        elif self.name == "step":
            main = self.decay ** (sum(step >= m for m in self.milestone_steps)
                                  if self.milestone_steps
                                  else step // (self.step_epochs * self.steps_per_epoch))
        elif self.name == "plateau":
            main = self.plateau_scale
        else:  # cosine from the end of warm-up to the end of training
            p = min(max((step - W) / max(1, T - W), 0.0), 1.0)
            main = self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * p))
        return warm * main

    def _onecycle(self, step: int) -> float:
        # Smith & Topin 2018 as in torch's OneCycleLR: from 1/25 up to 1 over the warm-up (30% of
        # training unless warmup_epochs says otherwise), then down to 1/(25*1e4), cosine both ways.
        # Departure: momentum is not cycled inversely; it stays at the configured value.
        start, end = 1 / 25, 1 / (25 * 1e4)
        up = self.warmup_steps or round(0.3 * self.total_steps)
        if step < up:
            p, lo, hi = step / max(1, up), start, 1.0
        else:
            p, lo, hi = (step - up) / max(1, self.total_steps - up - 1), 1.0, end
        p = min(p, 1.0)
        return hi + (lo - hi) * 0.5 * (1 + math.cos(math.pi * p))

    @property
    def lr(self) -> float:
        """The current learning rate of the first parameter group."""
        return self.optimizer.param_groups[0]["lr"]

    def _apply(self) -> None:
        f = self.factor(self.step)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * f

    def step_batch(self) -> None:
        """Advance one batch."""
        self.step += 1
        self._apply()

    def step_epoch(self, metric: float | None = None) -> None:
        """End of an epoch: "plateau" divides the rate after `patience` epochs without gain."""
        if self.name != "plateau" or metric is None:
            return
        if self.best is None or metric > self.best + 1e-4:  # 1e-4: ignore noise-level gains
            self.best, self.bad_epochs = metric, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.plateau_scale *= self.decay
                self.bad_epochs = 0
        self._apply()

    def state_dict(self) -> dict:
        """Everything that changes during training, as primitives (loads with weights_only=True)."""
        return {"name": self.name, "step": self.step, "plateau_scale": self.plateau_scale,
                "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved and reapply the rate."""
        if state.get("name") != self.name:
            raise ConfigError(f"the saved schedule is {state.get('name')!r} but this run uses "
                              f"{self.name!r}; resume with the same --schedule")
        self.step, self.plateau_scale = int(state["step"]), float(state["plateau_scale"])
        self.best, self.bad_epochs = state["best"], int(state["bad_epochs"])
        self._apply()


def build_schedule(optimizer: torch.optim.Optimizer, cfg, steps_per_epoch: int) -> LRSchedule:
    """The LRSchedule a TrainConfig asks for; `steps_per_epoch` counts batches."""
    # with gradient accumulation an epoch of `steps_per_epoch` batches takes fewer optimiser
    # steps; the last, partial group of an epoch still steps (see loop.fit)
    steps_per_epoch = math.ceil(steps_per_epoch / getattr(cfg, "accumulate", 1))
    return LRSchedule(optimizer, cfg.schedule, cfg.epochs, steps_per_epoch,
                      warmup_epochs=cfg.warmup_epochs, step_epochs=cfg.lr_step_epochs,
                      decay=cfg.lr_decay, min_lr=cfg.min_lr, patience=cfg.plateau_patience,
                      milestones=getattr(cfg, "lr_milestones", ()))


class ModelEMA:
    """An exponential moving average of a model's weights (Polyak & Juditsky 1992 averaging, in
    the decayed form of Inception-v3's training, Szegedy et al. 2016): evaluate with `.module`.

    The decay ramps up as min(decay, (1 + t) / (10 + t)) after t updates (TensorFlow's
    ExponentialMovingAverage with num_updates): at a plain 0.999 a short run's average would
    still weigh the random initialisation heavily (0.999^500 = 0.61). Floating-point buffers
    (BatchNorm running statistics) are averaged too; integer buffers are copied.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        import copy

        self.decay, self.updates = decay, 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend the model's current weights in; call after each optimiser step."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        own = self.module.state_dict()
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                own[k].lerp_(v, 1 - d)
            else:
                own[k].copy_(v)

    def state_dict(self) -> dict:
        """The averaged weights and the update count (tensors and an int: weights_only-safe)."""
        return {"updates": self.updates, "weights": dict(self.module.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.module.load_state_dict(state["weights"], strict=True)
        self.updates = int(state["updates"])
