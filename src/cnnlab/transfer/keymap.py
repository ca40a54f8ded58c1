"""State-dict key mapping: timm (and legacy torchvision) names to cnnlab's torchvision layout.

cnnlab keeps torchvision's module names, so torchvision files load as they are. timm's files
differ for some families:

- **ResNet / ResNeXt / SE-ResNet**: timm uses torchvision's names (``conv1``, ``bn1``,
  ``layer1.0.downsample.0``, ``fc``; SE blocks as ``se.fc1``/``se.fc2``, as cnnlab's): no change.
- **VGG**: timm replaces fc6/fc7 by convolutions, ``pre_logits.fc1`` (4096, 512, 7, 7) and
  ``pre_logits.fc2`` (4096, 4096, 1, 1), and names fc8 ``head.fc``. They map to ``classifier.0``,
  ``classifier.3`` and ``classifier.6``; the conv kernels are flattened to Linear weights (a 7x7
  conv on a 7x7 map is the Linear layer on the flattened (C, H, W) map, same element order).
- **DenseNet**: timm uses torchvision's current names; torchvision's original 2017 files used
  ``denselayer1.norm.1.weight`` for ``denselayer1.norm1.weight``, which is mapped here too.

Users can add their own rules: ``"REGEX=>REPLACEMENT"`` strings applied in order with
:func:`re.sub` (``"^backbone\\.=>"`` strips a prefix, ``"^head\\.=>fc."`` renames the head).
After renaming, a tensor whose size matches the model's but whose shape is a conv kernel where
the model has a Linear weight (or the reverse) is reshaped; any other mismatch is reported by
:func:`cnnlab.models.weights.load_weights`' checks as usual.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn

from cnnlab.errors import ConfigError


@dataclass(frozen=True)
class KeyRule:
    """One renaming rule: keys matching `pattern` get ``re.sub(pattern, replacement, key)``."""

    pattern: str
    replacement: str

    def apply(self, key: str) -> str:
        return re.sub(self.pattern, self.replacement, key)


# timm's VGG head (ConvMlp pre_logits + ClassifierHead) -> torchvision's classifier Sequential.
TIMM_VGG = (
    KeyRule(r"^pre_logits\.fc1\.", "classifier.0."),
    KeyRule(r"^pre_logits\.fc2\.", "classifier.3."),
    KeyRule(r"^head\.fc\.", "classifier.6."),
)
# torchvision's first DenseNet files: "norm.1" for "norm1" inside dense layers (timm and
# torchvision both rename these on load).
LEGACY_DENSENET = (
    KeyRule(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\."
            r"(weight|bias|running_mean|running_var|num_batches_tracked)$", r"\1\2.\3"),
)
PRESETS: dict[str, tuple[KeyRule, ...]] = {
    "none": (),
    "timm-resnet": (),        # same names as torchvision
    "timm-vgg": TIMM_VGG,
    "timm-densenet": LEGACY_DENSENET,
    "torchvision-densenet-legacy": LEGACY_DENSENET,
}
# The reverse of TIMM_VGG, for writing timm-layout files (and testing the round trip).
TO_TIMM_VGG = (
    KeyRule(r"^classifier\.0\.", "pre_logits.fc1."),
    KeyRule(r"^classifier\.3\.", "pre_logits.fc2."),
    KeyRule(r"^classifier\.6\.", "head.fc."),
)
_LEGACY_DENSE_KEY = re.compile(LEGACY_DENSENET[0].pattern)


def parse_rules(specs: Iterable[str] | str | os.PathLike | None) -> list[KeyRule]:
    """Rules from ``"REGEX=>REPLACEMENT"`` strings, or a text file of them (one a line, # notes)."""
    if specs is None:
        return []
    if isinstance(specs, (str, os.PathLike)) and "=>" not in str(specs):
        path = str(specs)
        if not os.path.isfile(path):
            raise ConfigError(f"key-map {path!r} is neither a REGEX=>REPLACEMENT rule nor a file; "
                              "write rules like '^backbone\\.=>' (strip a prefix)")
        with open(path, encoding="utf-8") as f:
            specs = [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    elif isinstance(specs, str):
        specs = [specs]
    rules = []
    for spec in specs:
        pattern, sep, repl = str(spec).partition("=>")
        if not sep or not pattern:
            raise ConfigError(f"key-map rule {spec!r} must look like REGEX=>REPLACEMENT, e.g. "
                              "'^module\\.backbone\\.=>' or '^head\\.=>fc.'")
        try:
            re.compile(pattern)
        except re.error as e:
            raise ConfigError(f"key-map rule {spec!r}: {pattern!r} is not a valid regular "
                              f"expression ({e})") from None
        rules.append(KeyRule(pattern, repl))
    return rules


def detect_layout(keys: Iterable[str]) -> str:
    """Guess a state dict's naming: "timm-vgg", "torchvision-densenet-legacy" or "none"."""
    keys = list(keys)
    if any(k.startswith(("pre_logits.fc1.", "head.fc.")) for k in keys) and any(
            k.startswith("features.") for k in keys):
        return "timm-vgg"
    if any(_LEGACY_DENSE_KEY.match(k) for k in keys):
        return "torchvision-densenet-legacy"
    return "none"


def resolve_rules(layout: str | None, keys: Iterable[str],
                  extra: Sequence[KeyRule] = ()) -> list[KeyRule]:
    """The rules for `layout` ("auto" detects it from `keys`; None or "none": no preset) + extra."""
    name = "none" if layout is None else layout
    if name == "auto":
        name = detect_layout(keys)
    if name not in PRESETS:
        raise ConfigError(f"unknown key layout {layout!r}; choose auto or one of "
                          f"{', '.join(PRESETS)}")
    return list(PRESETS[name]) + list(extra)


def fit_shapes(state: dict[str, torch.Tensor],
               target: Mapping[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Reshape conv kernels <-> Linear weights of equal size where the target expects the other."""
    out = {}
    for k, v in state.items():
        want = tuple(target.get(k, ()))
        if want and tuple(v.shape) != want and v.numel() == _numel(want) and (
                {v.ndim, len(want)} == {2, 4}) and v.shape[0] == want[0]:
            v = v.reshape(want)  # (O, C, kh, kw) <-> (O, C*kh*kw): row-major, same order
        out[k] = v
    return out


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def remap_state_dict(state: Mapping[str, torch.Tensor], rules: Sequence[KeyRule],
                     target: Mapping[str, tuple[int, ...]] | None = None) -> dict:
    """Rename every key through `rules` (in order) and, given target shapes, fit conv/linear shapes.

    Two source keys that land on one name is a ConfigError naming both.
    """
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for k, v in state.items():
        new = k
        for rule in rules:
            new = rule.apply(new)
        if new in out:
            raise ConfigError(f"key mapping sends both {origin[new]!r} and {k!r} to {new!r}; "
                              "make the rules more specific")
        out[new], origin[new] = v, k
    return fit_shapes(out, target) if target is not None else out


def model_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """{state-dict key: shape} of a model."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def load_mapped(model: nn.Module, source, *, layout: str | None = "auto",
                rules: Iterable[str] | str | None = None, strict: bool = True,
                allow_nonfinite: bool = False):
    """Load a timm/torchvision/any weights file into `model` through key mapping; a LoadReport.

    Reading is as safe as :func:`cnnlab.models.weights.load_weights` (weights-only unpickling,
    validated safetensors); a file that still does not fit raises its CheckpointMismatchError
    listing of missing, unexpected and mis-shaped keys.
    """
    from cnnlab.models import weights as W

    path, digest = W.fetch(source)
    raw, fmt = W.read_state_dict(path)
    state = W.unwrap_state_dict(raw, path)
    if not allow_nonfinite:
        W._check_finite(state, path)
    chosen = resolve_rules(layout, state, parse_rules(rules))
    state = remap_state_dict(state, chosen, model_shapes(model))
    report = W.LoadReport(source=str(source), path=str(path), format=fmt, sha256=digest)
    W._match_and_load(model, state, report, strict)
    return report
