"""Shared plumbing for the visualisations: picking layers by name, capturing activations, ReLU
rules for the backward pass, and turning an image into a model input.

Every method here uses only the zoo protocol (``forward_features``, ``forward_head``,
``num_classes``) and module names from ``named_modules()``; none checks a model's class.
"""

from __future__ import annotations

import contextlib
import difflib
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnlab.errors import ConfigError, InputShapeError


# --- layers by name ------------------------------------------------------------------------------

def conv_layers(model: nn.Module) -> list[str]:
    """Names of the modules with a convolution kernel (a 4-D ``weight``), in definition order."""
    names = []
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        # nn.Conv2d and friends; LeNet-5's PartialConv2d keeps (connections, k, k) kernels: 3-D.
        if name and isinstance(w, torch.Tensor) and w.dim() == 4:
            names.append(name)
    return names


def default_layer(model: nn.Module, which: str = "last") -> str:
    """The first or last convolution of `model`: the defaults for filters and Grad-CAM."""
    convs = conv_layers(model)
    if not convs:
        raise ConfigError(f"{_model_name(model)} has no convolution layer to visualise; "
                          "name one with --layer (`cnnlab summary MODEL` lists the layers)")
    return convs[0] if which == "first" else convs[-1]


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called `name` (as in ``named_modules()``), with close matches on a typo."""
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    near = difflib.get_close_matches(name, [n for n in modules if n], n=3, cutoff=0.5)
    hint = f"close matches: {', '.join(near)}. " if near else ""
    raise ConfigError(f"{_model_name(model)} has no layer named {name!r}; {hint}"
                      "`cnnlab summary MODEL` lists the layer names.")


def _model_name(model: nn.Module) -> str:
    return getattr(model, "model_name", type(model).__name__)


@contextlib.contextmanager
def capture(model: nn.Module, name: str) -> Iterator[dict]:
    """Record the output of layer `name` during forwards in the block: ``store["out"]``.

    A module called more than once per forward (a ResNet block's shared ``relu``) keeps its last
    call's output.
    """
    layer = find_layer(model, name)
    store: dict = {}

    def hook(module, args, output):
        store["out"] = output[0] if isinstance(output, (tuple, list)) else output

    handle = layer.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


# --- ReLU rules for the backward pass ------------------------------------------------------------

class _GuidedReLU(torch.autograd.Function):
    """Springenberg et al. 2015: pass a gradient only where the input and the gradient are > 0."""

    @staticmethod
    def forward(ctx, x):
        out = x.clamp(min=0)
        ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0).to(grad.dtype)


class _DeconvReLU(torch.autograd.Function):
    """Zeiler & Fergus 2014: the deconvnet rectifies the signal going down, whatever the forward
    input was, so the backward ReLU sees only the gradient's sign."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


_RELU_FUNCS = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}
_RULES = {"guided": _GuidedReLU.apply, "deconv": _DeconvReLU.apply,
          "vanilla": lambda x: torch.relu(x)}
RULES = tuple(_RULES)


class _ReluMode(TorchFunctionMode):
    """Route every ReLU, module or functional, to one backward rule, and never in place.

    An in-place ReLU after a hooked layer would overwrite the activation we captured (and trip
    autograd's version check), so all ReLUs run out of place while the mode is active. nn.ReLU
    calls F.relu, so this catches modules and ``F.relu(x, inplace=True)`` in a forward alike.
    Other activations (ReLU6, tanh) keep their ordinary backward.
    """

    def __init__(self, rule: str):
        super().__init__()
        self.fn = _RULES[rule]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _RELU_FUNCS:
            return self.fn(args[0])
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def relu_rule(model: nn.Module, rule: str = "vanilla"):
    """Run forwards in the block with ReLUs out of place and their backward set to `rule`
    ("vanilla", "guided" or "deconv"). Modules' ``inplace`` flags are restored on exit."""
    if rule not in _RULES:
        raise ConfigError(f"ReLU rule must be one of {RULES}; got {rule!r}")
    flags = {m: m.inplace for m in model.modules() if isinstance(getattr(m, "inplace", None), bool)}
    try:
        for m in flags:
            m.inplace = False
        with _ReluMode(rule):
            yield
    finally:
        for m, flag in flags.items():
            m.inplace = flag


# --- inputs --------------------------------------------------------------------------------------

def model_stats(model: nn.Module, in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and std a zoo model was registered with, repeated to `in_chans` channels."""
    mean, std = (0.0,), (1.0,)
    name = getattr(model, "model_name", None)
    if name is not None:
        from cnnlab.models import model_info

        info = model_info(name)
        mean, std = info.mean, info.std
    if len(mean) != in_chans:
        mean, std = (float(np.mean(mean)),) * in_chans, (float(np.mean(std)),) * in_chans
    return tuple(mean), tuple(std)


def model_in_chans(model: nn.Module) -> int:
    """Input channels: the model's ``in_chans`` attribute, else its first convolution's."""
    c = getattr(model, "in_chans", None)
    if c is None:
        first = find_layer(model, default_layer(model, "first"))
        c = first.weight.shape[1] * getattr(first, "groups", 1)
    return int(c)


def load_image(path, in_chans: int = 3, image_size: int | None = None) -> np.ndarray:
    """Decode an image file to uint8 (H, W, C), grey for 1-channel models, optionally S x S."""
    from cnnlab.data import decode_image, fit_image

    pixels = decode_image(path, mode="L" if in_chans == 1 else "RGB")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return fit_image(pixels, image_size) if image_size else pixels


def prepare(image, model: nn.Module, image_size: int | None = None, mean=None,
            std=None) -> tuple[torch.Tensor, np.ndarray]:
    """An image as ``(model input (1, C, H, W), display pixels uint8 (H, W, C))``.

    `image` is a path, a uint8 array (H, W) or (H, W, C), or a float tensor (C, H, W) or
    (1, C, H, W) already in the model's input space (then shown min-max scaled). Arrays and files
    are scaled to [0, 1] and standardised with `mean`/`std` (default: the model's registered ones).
    """
    if isinstance(image, torch.Tensor) and image.is_floating_point():
        x = image.detach().float()
        x = x[None] if x.dim() == 3 else x
        if x.dim() != 4 or x.shape[0] != 1:
            raise InputShapeError(f"expected one image tensor (C, H, W) or (1, C, H, W); "
                                  f"got shape {tuple(image.shape)}")
        shown = x[0].permute(1, 2, 0).numpy()
        lo, hi = float(shown.min()), float(shown.max())
        shown = ((shown - lo) / (hi - lo if hi > lo else 1.0) * 255).round().astype(np.uint8)
        return x, shown
    c = model_in_chans(model)
    if isinstance(image, torch.Tensor):
        image = image.numpy()
    if isinstance(image, np.ndarray):
        pixels = image[..., None] if image.ndim == 2 else image
        if pixels.ndim != 3 or pixels.dtype != np.uint8:
            raise InputShapeError(f"expected a uint8 image (H, W) or (H, W, C); got {pixels.dtype} "
                                  f"of shape {image.shape}. Float tensors must be (C, H, W).")
        if pixels.shape[-1] != c:   # grey <-> colour, as decode_image would have done
            pixels = pixels.mean(-1, keepdims=True).astype(np.uint8) if c == 1 else \
                np.repeat(pixels[..., :1], c, axis=-1)
        if image_size:
            from cnnlab.data import fit_image

            pixels = fit_image(pixels, image_size)
    else:
        pixels = load_image(image, c, image_size)
    if mean is None or std is None:
        mean, std = model_stats(model, c)
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    return x.float(), pixels


def predicted_or(model: nn.Module, logits: torch.Tensor, target: int | None) -> int:
    """`target` checked against the number of classes, or the predicted class when None."""
    n = logits.shape[-1]
    if target is None:
        return int(logits[0].argmax())
    if not 0 <= int(target) < n:
        raise ConfigError(f"class index must be in 0..{n - 1} ({_model_name(model)} has {n} "
                          f"outputs); got {target}")
    return int(target)


def to_unit(a, eps: float = 1e-12) -> np.ndarray:
    """Min-max scale to [0, 1] as float32; a constant map becomes all zeros."""
    a = np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a, dtype=np.float32)
    lo, hi = float(a.min()), float(a.max())
    return np.zeros_like(a) if hi - lo < eps else (a - lo) / (hi - lo)


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Eval mode for the block (BatchNorm running stats, no dropout), the old mode restored."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


# --- models from weights files and run directories -----------------------------------------------

def resolve_weights(source) -> str:
    """A weights path: a run directory (runs/NAME) means its best.safetensors, else last."""
    from pathlib import Path

    p = Path(source)
    if p.is_dir():
        for tag in ("best", "last"):
            if (p / f"{tag}.safetensors").is_file():
                return str(p / f"{tag}.safetensors")
        from cnnlab.errors import InvalidCheckpointError

        raise InvalidCheckpointError(f"{p} is a directory without best.safetensors or "
                                     "last.safetensors; give a run directory of `cnnlab train` or "
                                     "a .safetensors/.pth weights file")
    return str(source)


def weights_meta(path) -> dict:
    """The "cnnlab" header of a cnnlab .safetensors checkpoint (model, classes, mean, std,
    input_size, in_chans); {} for other files or when it cannot be read."""
    import json

    if not str(path).endswith(".safetensors"):
        return {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        out = json.loads(meta.get("cnnlab", "{}"))
        return out if isinstance(out, dict) else {}
    except Exception:  # a foreign or broken header: load_weights reports it properly
        return {}


def load_model(name: str | None = None, weights=None, num_classes: int | None = None,
               in_chans: int | None = None) -> tuple[nn.Module, dict]:
    """``(model in eval mode, checkpoint meta)`` from a zoo name and/or weights (a file or a run
    directory); a cnnlab checkpoint supplies the model name, classes, channels and mean/std."""
    from cnnlab.models import create_model

    meta: dict = {}
    if weights is not None:
        weights = resolve_weights(weights)
        meta = weights_meta(weights)
    name = name or meta.get("model")
    if not name:
        raise ConfigError("name a model with --model (e.g. --model resnet18); only cnnlab "
                          "checkpoints record their model")
    if num_classes is None and meta.get("classes"):
        num_classes = len(meta["classes"])
    if in_chans is None and meta.get("in_chans"):
        in_chans = int(meta["in_chans"])
    model = create_model(name, num_classes=num_classes, in_chans=in_chans, weights=weights)
    return model.eval(), meta
