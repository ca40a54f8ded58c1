"""Input validation for zoo models: a clear error before a confusing one deep inside forward.

`attach_input_check(model)` registers a forward pre-hook that checks rank, channels and spatial
size. The size limits come from shape propagation on the meta device (no real compute, no
memory for activations), done lazily on the first call and cached on the model per train/eval
mode, so the normal path is a few integer comparisons.

This is the zoo's one input check: models do not check their own input. One that has more to
say about its limit than the numbers (why LeNet-5 wants 32x32) sets an ``input_hint`` string,
which size errors end with.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Tuple

import torch
from torch import nn
from torch.utils._python_dispatch import _disable_current_modes

from cnnlab.errors import InputShapeError

# Cache attribute on the model: {training flag: InputLimits}. Train and eval can differ
# (GoogLeNet/Inception v3 run their auxiliary heads only in training).
_CACHE_ATTR = "_cnnlab_input_limits"
# Probes use a batch of 2: BatchNorm in training mode refuses a single value per channel,
# which a 1x1 map with N=1 would be, and that is not the failure we are looking for.
_PROBE_BATCH = 2
# Probe this many times the default side for an upper limit; a net whose classifier sits on a
# fixed-size flattened map (LeNet-5's 16*5*5 inputs) fails here, nets with global pooling do not.
_UPPER_PROBE_FACTOR = 8
_SHARED_MAX = 256


@dataclass(frozen=True)
class InputLimits:
    """What a model accepts: channels and the range of square input sides that keep it valid."""

    in_chans: int | None      # None: no Conv2d found, channels are not checked
    min_size: int | None      # None: could not be determined, size is not checked
    max_size: int | None = None   # None: no upper limit (global pooling before the classifier)


_SHARED: dict[tuple, InputLimits] = {}


def attach_input_check(model: nn.Module) -> nn.Module:
    """Register the input check on `model` (once; a second call only clears the cached limits)."""
    model.__dict__.pop(_CACHE_ATTR, None)
    model.__dict__.pop(_OK_ATTR, None)
    if cnnlab_input_check not in model._forward_pre_hooks.values():
        model.register_forward_pre_hook(cnnlab_input_check)
    return model


def cnnlab_input_check(module: nn.Module, args: Tuple[torch.Tensor]) -> None:
    """Forward pre-hook: reject inputs of the wrong rank, channel count or spatial size.

    Written so TorchScript can compile it (annotations, and the Python body behind
    ``is_scripting()``); a module-level function so the model still pickles and deep-copies.
    """
    if not torch.jit.is_scripting():
        _check(module, args)


def input_limits(model: nn.Module, hint: int | None = None) -> InputLimits:
    """The cached :class:`InputLimits` of `model` in its current train/eval mode."""
    cache = model.__dict__.setdefault(_CACHE_ATTR, {})
    limits = cache.get(model.training)
    if limits is None:
        seen = model.__dict__.get(_OK_ATTR, {}).get(model.training)
        if hint is None and seen:  # a size that already ran is a known-good anchor
            hint = max(max(h, w) for _, h, w in seen)
        # Models built alike share one probe per process (a test loop builds DenseNet-121 many
        # times); repr() lists every layer with its kernel, stride and padding.
        key = (type(model).__module__, type(model).__qualname__, model.training, repr(model))
        limits = _SHARED.get(key)
        if limits is None:
            limits = _compute_limits(model, hint)
            if len(_SHARED) >= _SHARED_MAX:
                _SHARED.clear()
            _SHARED[key] = limits
        cache[model.training] = limits
    return limits


def _model_name(model: nn.Module) -> str:
    return getattr(model, "model_name", None) or type(model).__name__


def _in_trace() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def _check(model: nn.Module, args) -> None:
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor):
        return
    if x.dim() != 4:
        raise InputShapeError(
            f"{_model_name(model)} expects a 4-D batch (N, C, H, W); got shape {tuple(x.shape)}. "
            + ("Add a batch dimension with x[None] or x.unsqueeze(0)." if x.dim() == 3 else
               "Stack images into an (N, C, H, W) tensor.")
        )
    _, c, h, w = x.shape
    if not (type(c) is int and type(h) is int and type(w) is int):
        return  # symbolic shapes (export with dynamic dims): nothing concrete to compare
    limits = model.__dict__.get(_CACHE_ATTR, {}).get(model.training)
    if limits is None:
        if _in_trace():  # never probe inside jit.trace/compile/export; the real forward still runs
            return
        # Fast path: one meta-device probe at this very size. The full search for the limits
        # (a dozen probes) runs only when it fails, to explain why.
        if _size_ok(model, x.dtype, c, h, w):
            return
        limits = input_limits(model, hint=_side_hint(x))
    if _fits(limits, c, h, w):
        return
    tracing = _in_trace()
    if not tracing:
        # Error path: the cache may be stale (the stem was replaced after the first call), so
        # recompute before blaming the input.
        model.__dict__.get(_CACHE_ATTR, {}).pop(model.training, None)
        limits = input_limits(model, hint=_side_hint(x))
        if _fits(limits, c, h, w):
            return
    raise _error(model, limits, c, h, w, x.dtype, locate=not tracing)


# Input sizes already seen to pass, per model in each train/eval mode: {mode: {(c, h, w)}}.
_OK_ATTR = "_cnnlab_ok_sizes"


def _size_ok(model: nn.Module, dtype: torch.dtype, c: int, h: int, w: int) -> bool:
    """Whether a (c, h, w) input runs through `model`, by one probe, remembered per size."""
    seen = model.__dict__.setdefault(_OK_ATTR, {}).setdefault(model.training, set())
    first = _first_conv(model)   # looked up each call: a stem replaced after a call counts
    if first is None or first[1].in_channels != c:
        return False
    if (c, h, w) in seen:
        return True
    try:
        ok = _Prober(model, c, dtype).failure(h, w) is None
    except Exception:  # noqa: BLE001 - a structure the meta copy cannot handle: full check decides
        return False
    if ok:
        seen.add((c, h, w))
    return ok


def _side_hint(x: torch.Tensor) -> int | None:
    h, w = x.shape[-2], x.shape[-1]
    return max(h, w) if type(h) is int and type(w) is int else None


def _fits(limits: InputLimits, c: int, h: int, w: int) -> bool:
    if limits.in_chans is not None and c != limits.in_chans:
        return False
    if limits.min_size is not None and min(h, w) < limits.min_size:
        return False
    if limits.max_size is not None and max(h, w) > limits.max_size:
        return False
    return True


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    # Registration order: every zoo model defines its stem first (conv1, features.0, Conv2d_1a).
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and m.in_channels > 0:
            return name, m
    return None


def _error(model, limits: InputLimits, c, h, w, dtype, locate: bool) -> InputShapeError:
    name = _model_name(model)
    if limits.in_chans is not None and c != limits.in_chans:
        conv_name = _first_conv(model)[0]
        return InputShapeError(
            f"{name} expects {_channels(limits.in_chans)} (its first conv, {conv_name}, takes "
            f"{limits.in_chans}); got {c}. Convert the images to {_channels(limits.in_chans)}, "
            f"or build the model with in_chans={c}."
        )
    lo, hi = limits.min_size, limits.max_size
    where = _locate(model, limits.in_chans, dtype, h, w) if locate else ""
    # A model may explain its own limit (LeNet-5's padded MNIST, Inception-v3's auxiliary head):
    # an `input_hint` string attribute or property, read now since it may depend on train/eval.
    hint = getattr(model, "input_hint", "")
    hint = f" {hint}" if isinstance(hint, str) and hint else ""
    if hi is None:
        # The model's own hint, where it has one, knows better than a generic suggestion.
        small_hint = "" if hint else " or a model for small images such as lenet5"
        return InputShapeError(
            f"{name} needs at least {lo}x{lo} input; got {h}x{w}{where}. "
            f"Use --image-size {lo}{small_hint}.{hint}"
        )
    default = getattr(model, "default_input_size", None)
    suggest = default if default is not None and lo <= default <= hi else lo
    accepted = f"exactly {lo}x{lo}" if lo == hi else f"{lo}x{lo} to {hi}x{hi}"
    return InputShapeError(
        f"{name} takes {accepted} input; got {h}x{w}{where}. "
        f"Use --image-size {suggest}.{hint}"
    )


def _channels(n: int) -> str:
    return f"{n} input channel" + ("" if n == 1 else "s")


def _locate(model: nn.Module, in_chans: int, dtype, h: int, w: int) -> str:
    """Probe again at the offending size to name the layer where the shapes break."""
    try:
        failure = _Prober(model, in_chans, dtype).failure(h, w)
    except Exception:  # noqa: BLE001 - the message is still useful without the layer
        return ""
    if failure is None or failure[1] is None:
        return ""
    layer, module = failure
    if not layer:
        return f" (the shapes stop fitting inside {_model_name(model)}.forward)"
    if isinstance(module, nn.Linear):
        return f" (the flattened feature map no longer fits {layer} (Linear))"
    return f" (the feature map vanishes at {layer} ({type(module).__name__}))"


# Layers whose output has their input's shape; probes swap them for Identity because several
# meta kernels are slow Python decompositions (BatchNorm: DenseNet-121 took 0.6 s per probe).
_SHAPE_PRESERVING = (
    nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
    nn.modules.dropout._DropoutNd, nn.ReLU, nn.Hardtanh, nn.LeakyReLU, nn.PReLU, nn.ELU,
    nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
)


class _Vanished(Exception):
    """Raised by a probe hook when a layer returns an empty feature map instead of failing."""


class _Prober:
    """Runs a hook-free meta-device copy of a model at given input sides (no data, no compute)."""

    def __init__(self, model: nn.Module, in_chans: int, dtype: torch.dtype):
        self.in_chans = in_chans
        self.dtype = dtype if dtype.is_floating_point else torch.float32
        self.clone = _shape_copy(model)
        self.names = {id(m): n for n, m in self.clone.named_modules()}
        self.stack: list[nn.Module] = []
        for m in self.clone.modules():
            m.register_forward_pre_hook(self._enter)
            m.register_forward_hook(self._leave)

    def _enter(self, module, args):
        self.stack.append(module)

    def _leave(self, module, args, out):
        self.stack.pop()
        outs = out if isinstance(out, (tuple, list)) else (out,)
        for o in outs:
            if isinstance(o, torch.Tensor) and o.dim() == 4 and min(o.shape[-2:]) < 1:
                self.stack.append(module)  # report this module as the culprit
                raise _Vanished

    def failure(self, h: int, w: int) -> tuple[str, nn.Module | None] | None:
        """None when an (h, w) input passes; else (qualified name, module) where it broke."""
        self.stack.clear()
        x = torch.empty(_PROBE_BATCH, self.in_chans, h, w, device="meta", dtype=self.dtype)
        try:
            # Hidden from any dispatch/function mode around the caller (a MAC counter, a tracer):
            # a probe is bookkeeping of this check, not part of the model's forward.
            with torch.no_grad(), _disable_current_modes(), torch._C.DisableTorchFunction():
                self.clone(x)
        except InputShapeError:
            m = self.stack[-1] if self.stack else self.clone
            if m is self.clone:  # the model validates its own input: no layer to blame
                return "", None
            return self.names.get(id(m), ""), m
        except Exception:  # any failure at this size counts; the culprit is the innermost layer
            m = self.stack[-1] if self.stack else self.clone
            return self.names.get(id(m), ""), m
        return None

    def ok(self, side: int) -> bool:
        return self.failure(side, side) is None


def meta_copy(model: nn.Module) -> nn.Module:
    """A hook-free copy of `model` on the meta device: its structure without any weight data."""
    # Pre-seed deepcopy's memo with meta stand-ins for every parameter and buffer, so copying the
    # structure never duplicates weight data (VGG-16 would otherwise cost 550 MB).
    memo: dict[int, object] = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(meta, t.requires_grad) if isinstance(t, nn.Parameter) else meta
    clone = copy.deepcopy(model, memo)
    for m in clone.modules():
        # The user's hooks (ours included, and analysis hooks that record activations) must not
        # see what the copy is used for.
        for hooks in ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks",
                      "_backward_pre_hooks", "_forward_pre_hooks_with_kwargs",
                      "_forward_hooks_with_kwargs", "_forward_hooks_always_called"):
            d = getattr(m, hooks, None)
            if d is not None:
                d.clear()
    return clone


def _shape_copy(model: nn.Module) -> nn.Module:
    clone = meta_copy(model)
    for parent in list(clone.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, _SHAPE_PRESERVING):
                setattr(parent, child_name, nn.Identity())
    return clone


def _param_dtype(model: nn.Module) -> torch.dtype:
    for p in itertools.chain(model.parameters(), model.buffers()):
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _compute_limits(model: nn.Module, hint: int | None) -> InputLimits:
    first = _first_conv(model)
    if first is None:
        return InputLimits(None, None, None)
    in_chans = first[1].in_channels
    try:
        prober = _Prober(model, in_chans, _param_dtype(model))
    except Exception:  # a structure deepcopy or meta tensors cannot handle: check channels only
        return InputLimits(in_chans, None, None)
    anchors = [getattr(model, "default_input_size", None) or 224]
    if hint is not None and hint not in anchors:
        anchors.append(hint)
    anchor = next((s for s in anchors if prober.ok(s)), None)
    if anchor is None:  # no known-good size (a model meta tensors cannot run): channels only
        return InputLimits(in_chans, None, None)
    # Binary search below a valid side: output sides of conv/pool never shrink as the input
    # grows, so validity is monotone there.
    if prober.ok(1):
        lo = 1
    else:
        bad, good = 1, anchor
        while good - bad > 1:
            mid = (bad + good) // 2
            bad, good = (bad, mid) if prober.ok(mid) else (mid, good)
        lo = good
    big = anchor * _UPPER_PROBE_FACTOR
    if prober.ok(big):
        return InputLimits(in_chans, lo, None)
    good, bad = anchor, big
    while bad - good > 1:
        mid = (bad + good) // 2
        good, bad = (mid, bad) if prober.ok(mid) else (good, mid)
    return InputLimits(in_chans, lo, good)
