"""Image features for the zero-shot models from any zoo backbone with any weights: penultimate
features (N, D) via ``forward_head(forward_features(x), pre_logits=True)`` for the fc model, and the
last conv map (N, C, H, W) of ``forward_features`` for the conv model (Ba et al. 2015 use VGG-19's
fc7 and conv5_3; an ImageNet-trained torchvision VGG file gives that setting).
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import ConfigError


def first_conv_channels(model) -> int:
    """Input channels the model expects (its first Conv2d), 3 if it has none."""
    from torch import nn

    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return conv.in_channels if conv is not None else 3


def load_backbone(name: str, weights: str | None = None):
    """A zoo model in eval mode plus its normalisation (mean, std) and input channels."""
    from cnnlab.models import create_model, model_info

    model = create_model(name, weights=weights).eval()
    info = model_info(name)
    chans = first_conv_channels(model)
    mean, std = np.asarray(info.mean, np.float32), np.asarray(info.std, np.float32)
    if chans == 1 and len(mean) != 1:
        mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
    return model, mean, std, chans


def extract_features(model, images: np.ndarray, mean, std, conv_maps: bool = False,
                     map_size: int | None = None):
    """(feats (B, D) float32, maps (B, C, h, w) float32 or None) of uint8 images (B, C, S, S).

    RGB images go to a one-channel model as their channel mean; `map_size` average-pools the conv
    map to map_size x map_size to keep it small.
    """
    import torch
    import torch.nn.functional as F

    chans = first_conv_channels(model)
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0      # (B, C, S, S)
    if x.shape[1] != chans:
        if chans == 1:
            x = x.mean(1, keepdim=True)
        elif x.shape[1] == 1:
            x = x.expand(-1, chans, -1, -1)
        else:
            raise ConfigError(f"images have {x.shape[1]} channels, the backbone takes {chans}")
    m = torch.as_tensor(np.asarray(mean, np.float32)).view(1, -1, 1, 1)
    s = torch.as_tensor(np.asarray(std, np.float32)).view(1, -1, 1, 1)
    with torch.no_grad():
        fmap = model.forward_features((x - m) / s)
        feats = model.forward_head(fmap, pre_logits=True).flatten(1)         # (B, D)
        maps = None
        if conv_maps:
            if fmap.ndim != 4:
                raise ConfigError(f"{type(model).__name__}.forward_features gives shape "
                                  f"{tuple(fmap.shape)}, not a conv map (N, C, H, W)")
            if map_size is not None and fmap.shape[-1] > map_size:
                fmap = F.adaptive_avg_pool2d(fmap, map_size)
            maps = fmap.numpy().astype(np.float32)
    return feats.numpy().astype(np.float32), maps


def extract_dataset(data, rels: list[str], model, mean, std, image_size: int,
                    conv_maps: bool = False, map_size: int | None = 7, batch_size: int = 64):
    """Features of the images `rels` of a :class:`cnnlab.zeroshot.data.CubData`, streamed in
    batches. Returns (feats (M, D), maps or None, kept positions (M,) into `rels`)."""
    from cnnlab.zeroshot.data import iter_image_batches

    feats, maps, kept = [], [], []
    for batch, idx in iter_image_batches(data, rels, image_size, batch_size):
        f, m = extract_features(model, batch, mean, std, conv_maps, map_size)
        feats.append(f)
        kept += idx
        if m is not None:
            maps.append(m)
    if not feats:
        raise ConfigError("no image could be decoded; see the skip report")
    order = np.argsort(kept, kind="stable")               # back to the order of `rels`
    f = np.concatenate(feats)[order]
    m = np.concatenate(maps)[order] if maps else None
    return f, m, np.asarray(kept)[order]
