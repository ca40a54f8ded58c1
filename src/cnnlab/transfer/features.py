"""Off-the-shelf CNN features at a named layer, saved as an .npz for a linear classifier.

Razavian et al. 2014 ("CNN Features off-the-shelf") and Donahue et al. 2014 (DeCAF) showed that
the activations of a network trained on ImageNet, fed to a linear SVM, are strong generic image
features; the CS231n notes single out VGG's fc7. Layers are named:

- ``pre_logits``: the classifier's input, ``forward_head(x, pre_logits=True)`` (ResNet/DenseNet:
  the pooled final map; VGG/AlexNet: fc7 after its ReLU).
- ``fc7``: the same for the models that have fc6/fc7 (a "head" group); others are told to use
  pre_logits.
- ``avgpool``: the global average of ``forward_features``' last map, (N, C), for every family
  (VGG's own ``avgpool`` module is a 7x7 pool and is not what this name means here).
- ``logits``: the model's output.
- ``stem``, ``stage1``..``stageK``: the output of that layer group (see
  :mod:`cnnlab.transfer.groups`), e.g. ``stage3`` for mid-level features.
- any module name from ``model.named_modules()`` (``layer3.1.conv2``, ``features.28``).

Maps (N, C, H, W) become vectors by global average pooling (``pool="avg"``, the default; also
"max" or "flatten"). The forward pass stops at the requested layer, so early layers are cheap.
The file holds x_train, y_train, x_test, y_test (float32 features, int64 labels) and classes, the
layout ``cnnlab baseline --features FILE.npz`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.errors import ConfigError, DataError
from cnnlab.transfer.groups import layer_groups

NAMED_LAYERS = ("pre_logits", "fc7", "avgpool", "logits")
POOLS = ("avg", "max", "flatten")


class _Captured(Exception):
    """Raised by the capture hook to stop the forward pass once the layer has run."""

    def __init__(self, value):
        super().__init__()
        self.value = value


@dataclass(frozen=True)
class LayerSpec:
    """A resolved layer: how to read it ("head", "avgpool", "logits" or "module") and where."""

    name: str
    kind: str
    module: str | None = None


def resolve_layer(model: nn.Module, layer: str) -> LayerSpec:
    """A layer name (see the module docstring) as a :class:`LayerSpec`; ConfigError if unknown."""
    if layer in ("pre_logits", "avgpool", "logits"):
        return LayerSpec(layer, {"pre_logits": "head"}.get(layer, layer))
    groups = layer_groups(model)
    if layer == "fc7":
        if "head" not in groups:
            raise ConfigError(f"{getattr(model, 'model_name', type(model).__name__)} has no fc7 "
                              "(no fully connected layers before the classifier); use --layer "
                              "pre_logits or avgpool for its top features")
        return LayerSpec(layer, "head")
    if layer in groups and (layer == "stem" or layer.startswith("stage")):
        return LayerSpec(layer, "module", groups[layer].modules[-1])
    names = dict(model.named_modules())
    if layer in names and layer:
        return LayerSpec(layer, "module", layer)
    stages = ", ".join(groups.backbone())
    raise ConfigError(f"unknown layer {layer!r}; use {', '.join(NAMED_LAYERS)}, a layer group "
                      f"({stages}) or a module name from model.named_modules()")


def _pool(t: torch.Tensor, pool: str) -> torch.Tensor:
    if t.ndim == 4:  # (N, C, H, W) -> (N, C) or (N, C*H*W)
        if pool == "avg":
            return t.mean(dim=(2, 3))
        if pool == "max":
            return t.amax(dim=(2, 3))
    return t.flatten(1)


@torch.no_grad()
def extract_features(model: nn.Module, images, layer: str = "pre_logits", *,
                     batch_size: int = 64, pool: str = "avg", mean=None, std=None,
                     device=None) -> np.ndarray:
    """(N, D) float32 features of `images` (float (N, C, H, W) in [0, 1]) at `layer` (Razavian
    et al. 2014); `mean`/`std` standardise per channel first, as the model was trained."""
    if pool not in POOLS:
        raise ConfigError(f"pool must be one of {POOLS}; got {pool!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
    spec = resolve_layer(model, layer)
    x_all = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if x_all.ndim != 4:
        raise DataError(f"expected images (N, C, H, W); got shape {tuple(x_all.shape)}")
    device = torch.device(device) if device else next(model.parameters()).device
    m = None if mean is None else torch.as_tensor(mean, dtype=torch.float32)[:, None, None]
    s = None if std is None else torch.as_tensor(std, dtype=torch.float32)[:, None, None]
    was_training = model.training
    model.eval()
    handle = None
    if spec.kind == "module":
        def capture(mod, inputs, out):
            raise _Captured(out)
        handle = dict(model.named_modules())[spec.module].register_forward_hook(capture)
    out = []
    try:
        for i in range(0, len(x_all), batch_size):
            x = x_all[i:i + batch_size].float()
            if m is not None:
                x = (x - m) / s
            x = x.to(device)
            if spec.kind == "module":
                try:
                    model(x)
                    raise ConfigError(f"module {spec.module!r} did not run in the forward pass "
                                      "(e.g. an auxiliary head in eval mode); pick another layer")
                except _Captured as c:
                    f = c.value
            elif spec.kind == "head":
                f = model.forward_head(model.forward_features(x), pre_logits=True)
            elif spec.kind == "avgpool":
                f = model.forward_features(x)
            else:
                f = model(x)
            out.append(_pool(f, pool).float().cpu())
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def load_split_images(source, split: str, image_size: int, in_chans: int | None = None,
                      mode: str | None = None):
    """(x float (N, C, S, S) in [0, 1], y, classes) of one split, in the model's channels.

    `source` is an image folder or archive, or None for the embedded digits (repeated to three
    channels for RGB models). "test" falls back to "val" when the data has no test split.
    """
    from cnnlab.data import load_arrays

    kw = {} if source is None else {"mode": mode or ("L" if in_chans == 1 else "RGB")}
    try:
        x, y, classes = load_arrays(source, split, image_size, **kw)
    except DataError:
        if split != "test":
            raise
        x, y, classes = load_arrays(source, "val", image_size, **kw)
    if in_chans == 3 and x.shape[1] == 1:  # grey into an RGB model: R = G = B, as decoding grey
        x = x.repeat(3, axis=1)             # files in RGB mode does
    if in_chans is not None and x.shape[1] != in_chans:
        raise DataError(f"the model takes {in_chans}-channel images but the data has "
                        f"{x.shape[1]}; use a model or data with matching channels")
    return x, np.asarray(y, dtype=np.int64), list(classes)


def feature_set(model: nn.Module, source=None, layer: str = "pre_logits", *,
                image_size: int | None = None, mean=None, std=None, batch_size: int = 64,
                pool: str = "avg", mode: str | None = None, limit: int | None = None) -> dict:
    """Features of a data set's train and test (else val) splits: the arrays of the .npz.

    `source` is an image folder or archive, or None for the embedded digits; `limit` keeps the
    first `limit` images of each split (for quick looks).
    """
    resolve_layer(model, layer)  # a bad layer name fails before any decoding
    side = image_size or getattr(model, "default_input_size", None) or 224
    chans = getattr(model, "in_chans", None)
    x_tr, y_tr, classes = load_split_images(source, "train", side, chans, mode)
    x_te, y_te, _ = load_split_images(source, "test", side, chans, mode)
    if limit is not None:
        x_tr, y_tr, x_te, y_te = x_tr[:limit], y_tr[:limit], x_te[:limit], y_te[:limit]
    opts = dict(batch_size=batch_size, pool=pool, mean=mean, std=std)
    return {"x_train": extract_features(model, x_tr, layer, **opts), "y_train": y_tr,
            "x_test": extract_features(model, x_te, layer, **opts), "y_test": y_te,
            "classes": np.asarray(classes, dtype=str)}


def save_features(path, arrays: dict, **meta) -> Path:
    """Write `arrays` (plus string metadata such as model and layer) to an .npz, no pickles."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz")  # np.savez would add it anyway
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {k: np.asarray(str(v)) for k, v in meta.items() if v is not None}
    np.savez(path, **arrays, **extra)
    return path
