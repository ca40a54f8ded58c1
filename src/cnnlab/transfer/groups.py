"""Layer groups of any zoo model, bottom to top: stem, stage1..stageK, head, classifier.

Fine-tuning works on groups rather than single layers (Yosinski et al. 2014 show that features
go from general to specific with depth; Howard & Ruder 2018 unfreeze and set rates per group).
Groups are found from the model protocol and module names only, never from its class:

- **classifier**: the parameters that ``reset_classifier`` replaces (found on a weightless copy,
  see :func:`cnnlab.models.weights.classifier_keys`): ResNet's ``fc``, VGG's fc8, GoogLeNet's
  ``fc`` and both auxiliary output layers.
- **head**: every other parameter that ``forward_features`` does not use: VGG/AlexNet's fc6 and
  fc7, LeNet-5's C5 and F6, GoogLeNet's auxiliary classifiers. Absent where there is none (ResNet).
- **stem** and **stageN**: ``forward_features`` runs once on the meta device (no weights, no
  compute) with a hook on each *unit*: the model's children, or the children of the one child
  that holds the whole backbone (``features`` in VGG, DenseNet, MobileNet). Units are grouped by
  the spatial size of their output: a new group starts when the side falls to 2/3 of the group's
  first side or less (a stride-2 step; a 3x3 conv without padding, 149 -> 147 in Inception v3, is
  not a new stage), or at a unit named like a stage (``layer2``, ``stage3``), which is how the
  CIFAR ResNets mark stages that keep the 32x32 resolution. The first group is the stem; groups
  without parameters (a lone max-pool) are dropped, and the rest are numbered stage1, stage2, ...

So ResNet-50 gives stem (conv1, bn1), stage1..stage4 (layer1..layer4) and classifier (fc);
VGG-16 gives stem (conv1_x), stage1..stage4 (conv2_x..conv5_x), head (fc6, fc7), classifier.
Every parameter lies in exactly one group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from cnnlab.errors import ConfigError

# A new group starts when a unit's output side is at most this fraction of the group's first
# side: a stride-2 downsampling halves it (55 -> 27), an unpadded 3x3 conv loses 2 pixels.
DOWNSAMPLE_RATIO = 2 / 3
# Unit names that open a stage whatever the resolution (torchvision and timm ResNets).
STAGE_NAME = re.compile(r"^(layer|stage|stages\.)\d+$")
# Side used to probe models that do not carry a default input size (built outside create_model).
PROBE_SIDE = 224
# Probe results per architecture (repr lists every layer with its shape arguments), as
# models/shapes.py does for input limits: freezing, rates and features each ask for the groups.
_PROBES: dict[tuple, tuple] = {}
_PROBES_MAX = 64


@dataclass
class LayerGroup:
    """One group: its name, the modules it is made of and its parameter names (model-relative)."""

    name: str
    modules: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    out_shape: tuple[int, ...] | None = None   # (C, H, W) at the probe size, for stem/stages

    def parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """The group's parameter tensors in `model`."""
        named = dict(model.named_parameters())
        return [named[p] for p in self.params]


class LayerGroups(dict):
    """Ordered ``{name: LayerGroup}``, bottom (stem) to top (classifier)."""

    @property
    def names(self) -> list[str]:
        return list(self)

    def backbone(self) -> list[str]:
        """Names of the stem and stages, bottom to top."""
        return [n for n in self if n == "stem" or n.startswith("stage")]

    def top(self, k: int) -> list[str]:
        """The top `k` groups (k=1: the classifier alone; k >= len: all of them)."""
        if k < 0:
            raise ConfigError(f"k must be >= 0; got {k}")
        return self.names[max(0, len(self) - k):] if k else []

    def group_of(self, param_name: str) -> str:
        """Which group a parameter name belongs to."""
        for g in self.values():
            if param_name in g.params:
                return g.name
        raise KeyError(param_name)


def _backbone_container(model: nn.Module, used: set[str]) -> tuple[str, nn.Module]:
    """Descend while a single child holds every parameter that forward_features uses."""
    prefix, node = "", model
    while True:
        holders = [(n, c) for n, c in node.named_children()
                   if any(u.startswith(f"{prefix}{n}.") for u in used)]
        if len(holders) != 1 or next(holders[0][1].children(), None) is None:
            return prefix, node
        name, node = holders[0]
        prefix = f"{prefix}{name}."


def _probe(model: nn.Module, side: int, in_chans: int):
    """Run forward_features once on a meta copy: (params used, [(unit, out shape)], prefix)."""
    from cnnlab.models.shapes import meta_copy

    clone = meta_copy(model).eval()
    shapes: dict[str, tuple[int, ...]] = {}   # module name -> first output's (C, H, W); in order

    def record(name):
        def hook(mod, inputs, out):
            if name not in shapes:
                shapes[name] = tuple(out.shape[1:]) if torch.is_tensor(out) else ()
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in clone.named_modules() if n]
    x = torch.empty(2, in_chans, side, side, device="meta")
    try:
        with torch.no_grad():
            clone.forward_features(x)
    finally:
        for h in handles:
            h.remove()
    used = {p for p, _ in clone.named_parameters() if p.rsplit(".", 1)[0] in shapes}
    prefix, container = _backbone_container(clone, used)
    units = {prefix + n for n, _ in container.named_children()}
    # hooks fire when a module finishes, so a unit's first output comes after its submodules'
    # and `shapes` is in execution order of completion, which for units is the order they ran
    return used, [(n, s) for n, s in shapes.items() if n in units], prefix


def layer_groups(model: nn.Module, input_size: int | None = None) -> LayerGroups:
    """Split a zoo model's parameters into stem, stages, head and classifier (see module doc)."""
    from cnnlab.models.weights import classifier_keys

    for attr in ("forward_features", "forward_head", "reset_classifier"):
        if not callable(getattr(model, attr, None)):
            raise ConfigError(
                f"{type(model).__name__} has no {attr}(); layer groups need the zoo protocol "
                "(forward_features, forward_head, reset_classifier). Build it with "
                "cnnlab.create_model."
            )
    side = input_size or getattr(model, "default_input_size", None) or PROBE_SIDE
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    in_chans = getattr(model, "in_chans", None) or (conv.in_channels if conv else 3)
    key = (type(model).__module__, type(model).__qualname__, repr(model), side, in_chans)
    if key not in _PROBES:
        if len(_PROBES) >= _PROBES_MAX:
            _PROBES.clear()
        _PROBES[key] = _probe(model, side, in_chans)
    used, units, prefix = _PROBES[key]
    all_params = [n for n, _ in model.named_parameters()]
    head_keys = classifier_keys(model)
    classifier = [p for p in all_params if p in head_keys]

    groups: list[LayerGroup] = []
    start_side = None
    for name, shape in units:
        out_side = shape[-1] if len(shape) == 3 else None
        new = (not groups or STAGE_NAME.match(name.removeprefix(prefix)) is not None
               or (out_side is not None and start_side is not None
                   and out_side <= DOWNSAMPLE_RATIO * start_side))
        if new:
            groups.append(LayerGroup(name=""))
            start_side = out_side
        g = groups[-1]
        g.modules.append(name)
        g.params += [p for p in all_params if p.startswith(name + ".") and p in used
                     and p not in head_keys]
        if len(shape) == 3:
            g.out_shape = shape
    groups = [g for g in groups if g.params]
    for i, g in enumerate(groups):
        g.name = "stem" if i == 0 else f"stage{i}"
    if len(groups) == 1:  # a backbone of one resolution: call it a stage, there is no stem
        groups[0].name = "stage1"
    taken = {p for g in groups for p in g.params}
    stray_used = [p for p in all_params if p in used and p not in taken and p not in head_keys]
    if stray_used and groups:  # used by forward_features outside every unit: the top stage
        groups[-1].params += stray_used
        taken |= set(stray_used)
    head = [p for p in all_params if p not in taken and p not in head_keys]
    out = LayerGroups((g.name, g) for g in groups)
    if head:
        mods = sorted({p.rsplit(".", 1)[0] for p in head})
        out["head"] = LayerGroup("head", mods, head)
    if classifier:
        mods = sorted({p.rsplit(".", 1)[0] for p in classifier})
        out["classifier"] = LayerGroup("classifier", mods, classifier)
    return out
