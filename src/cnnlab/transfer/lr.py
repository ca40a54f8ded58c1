"""Discriminative learning rates and gradual unfreezing (Howard & Ruder 2018, ULMFiT, sec. 3.2-3.3).

Lower layers hold general features that the new task should change little, so they get smaller
rates: each layer group's rate is ``base_lr * multiplier``. Multipliers are given per group name
or alias, e.g. ``{"backbone": 0.1}`` (CS231n's "smaller learning rate for the pretrained
weights"), or by a constant factor per group going down, ``lr_l-1 = lr_l / 2.6`` in ULMFiT.

Gradual unfreezing trains the classifier alone first, then unfreezes one more group from the
top every `every` epochs, so the randomly initialised head does not send large gradients into
the pretrained layers at the start.
"""

from __future__ import annotations

from typing import Mapping

from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.transfer.freeze import freeze, unfreeze
from cnnlab.transfer.groups import LayerGroups, layer_groups

# ULMFiT's factor between consecutive groups' rates (Howard & Ruder 2018, sec. 3.2).
ULMFIT_DECAY = 2.6
# Aliases accepted as multiplier keys, besides group names.
ALIASES = ("backbone", "stages", "head", "classifier", "default")


def parse_lr_mults(specs) -> dict[str, float]:
    """``"backbone=0.1,classifier=1"`` or a list of such strings -> ``{"backbone": 0.1, ...}``."""
    if not specs:
        return {}
    if isinstance(specs, str):
        specs = [specs]
    out: dict[str, float] = {}
    for spec in specs:
        for item in str(spec).split(","):
            key, sep, value = item.strip().partition("=")
            try:
                if not sep or not key:
                    raise ValueError
                mult = float(value)
            except ValueError:
                raise ConfigError(f"--lr-mult expects GROUP=FACTOR, e.g. backbone=0.1; got "
                                  f"{item.strip()!r}") from None
            if mult < 0:
                raise ConfigError(f"learning-rate multiplier for {key!r} must be >= 0; got {mult}")
            out[key.strip()] = mult
    return out


def group_multipliers(groups: LayerGroups, mults: Mapping[str, float]) -> dict[str, float]:
    """Each group's multiplier: its own name first, then "stages"/"backbone", "default", 1."""
    valid = set(groups) | set(ALIASES)
    bad = [k for k in mults if k not in valid]
    if bad:
        raise ConfigError(f"unknown learning-rate group(s) {bad}; use one of {', '.join(groups)} "
                          "or backbone (stem + stages), stages, default")
    backbone = set(groups.backbone())
    out = {}
    for name in groups:
        keys = [name]
        if name.startswith("stage"):
            keys.append("stages")
        if name in backbone:
            keys.append("backbone")
        keys.append("default")
        out[name] = next((float(mults[k]) for k in keys if k in mults), 1.0)
    return out


def layerwise_decay(groups: LayerGroups, factor: float = ULMFIT_DECAY) -> dict[str, float]:
    """ULMFiT multipliers: 1 for the top group, 1/factor for the next one down, and so on."""
    if factor < 1:
        raise ConfigError(f"the decay factor must be >= 1 (lower groups learn slower); "
                          f"got {factor}")
    names = list(groups)
    return {n: factor ** -(len(names) - 1 - i) for i, n in enumerate(names)}


def discriminative_param_groups(model: nn.Module, lr: float,
                                mults: Mapping[str, float] | None = None, *,
                                weight_decay: float = 0.0, include_frozen: bool = False,
                                groups: LayerGroups | None = None) -> list[dict]:
    """torch.optim parameter groups, one per layer group (x decay / no decay), lr = lr * mult.

    Weight decay applies to weights only (not biases or norm scales, as in
    :func:`cnnlab.train.optim.param_groups`). Frozen parameters are left out unless
    `include_frozen` (gradual unfreezing needs them in the optimiser from the start). Groups
    with a 0 multiplier are left out (an lr of 0 is the same as frozen, at more cost).
    """
    groups = groups or layer_groups(model)
    per_group = group_multipliers(groups, mults or {})
    params = dict(model.named_parameters())
    out = []
    for name, g in groups.items():
        mult = per_group[name]
        if mult == 0:
            continue
        chosen = [params[p] for p in g.params if include_frozen or params[p].requires_grad]
        # ndim <= 1: biases and BatchNorm scale/shift, which L2 decay would only fight
        decay = [p for p in chosen if p.ndim > 1]
        no_decay = [p for p in chosen if p.ndim <= 1]
        for suffix, ps, wd in (("decay", decay, weight_decay), ("no_decay", no_decay, 0.0)):
            if ps:
                out.append({"params": ps, "lr": lr * mult, "weight_decay": wd,
                            "name": f"{name}/{suffix}", "lr_mult": mult})
    if not out:
        raise ConfigError("no trainable parameters left: every group is frozen or has a 0 "
                          "multiplier; unfreeze a group (e.g. the classifier)")
    return out


def unfreeze_schedule(groups: LayerGroups, epoch: int, every: int = 1) -> list[str]:
    """Groups trainable in `epoch` (0-based) when gradually unfreezing: top 1 + epoch // every."""
    if every < 1:
        raise ConfigError(f"unfreeze every must be >= 1 epoch; got {every}")
    return groups.top(min(len(groups), 1 + epoch // every))


class GradualUnfreezing:
    """Training-loop callback: at each epoch start, unfreeze the next group down (ULMFiT 3.3).

    Build the optimiser with ``include_frozen=True`` so the groups it unfreezes are in it.
    `freeze_bn=True` keeps BN layers in eval mode even once their group trains.
    """

    def __init__(self, model: nn.Module, every: int = 1, freeze_bn: bool = False,
                 groups: LayerGroups | None = None):
        self.groups = groups or layer_groups(model)
        self.every, self.freeze_bn = every, freeze_bn
        self.trainable: list[str] = []
        self.apply(model, 0)

    def apply(self, model: nn.Module, epoch: int) -> list[str]:
        """Set the trainable groups for `epoch`; returns them."""
        want = unfreeze_schedule(self.groups, epoch, self.every)
        rest = [n for n in self.groups if n not in want]
        if rest:
            freeze(model, rest, bn=self.freeze_bn, groups=self.groups)
        unfreeze(model, want, bn=not self.freeze_bn, groups=self.groups)
        self.trainable = want
        return want

    def on_train_start(self, model, optimizer=None, start_epoch: int = 0, **_):
        # Parameters that are frozen now but missing from the optimiser would never train once
        # unfrozen: fail loudly rather than quietly train the head alone.
        if optimizer is not None:
            held = {id(p) for g in optimizer.param_groups for p in g["params"]}
            missing = [n for n, p in model.named_parameters() if id(p) not in held]
            if missing:
                raise ConfigError(
                    f"gradual unfreezing needs every parameter in the optimiser, but "
                    f"{len(missing)} are not (e.g. {', '.join(missing[:3])}); build it from "
                    "discriminative_param_groups(..., include_frozen=True) (prepare() does)")
        self.apply(model, start_epoch)

    def on_epoch_start(self, epoch: int, model, **_):
        self.apply(model, epoch)
