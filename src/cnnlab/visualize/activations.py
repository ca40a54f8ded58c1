"""What drives one unit or one class.

- :func:`max_activating_patches`: the data-set patches that excite a channel most, cut out by the
  unit's receptive field (Zeiler & Fergus 2014, Fig. 2; Girshick et al. 2014, sec. 3.1).
- :func:`class_model`: an input that maximises a class score, found by gradient ascent on the
  image with an L2 penalty (Simonyan, Vedaldi & Zisserman 2014, sec. 2), plus jitter and blur.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.visualize.hooks import (capture, eval_mode, find_layer, model_in_chans, predicted_or,
                                    relu_rule)


@dataclass
class Patch:
    """One maximally activating patch: which image, how strongly, and where."""

    index: int                  # position of the image in the data given
    score: float                # the channel's largest activation on this image
    unit: tuple[int, int]       # (row, col) of that unit in the layer's map
    box: tuple[int, int, int, int]   # (top, left, bottom, right) in input pixels, clipped
    pixels: np.ndarray          # the crop, (bottom - top, right - left, C) of the input given


def layer_field(model: nn.Module, layer: str, input_shape) -> tuple[int, int] | None:
    """Receptive field (H, W) in input pixels of one unit of `layer` (Araujo et al. 2019), from
    :func:`cnnlab.analyze.summary`; a container layer takes its last leaf's. None if unknown."""
    from cnnlab.analyze import summary

    rows = summary(model, tuple(input_shape), device="cpu").rows
    hits = [r for r in rows
            if r.rf is not None and (r.name == layer or r.name.startswith(layer + "."))]
    return tuple(int(v) for v in hits[-1].rf) if hits else None


def max_activating_patches(model: nn.Module, images: torch.Tensor, layer: str, channel: int,
                           k: int = 9, batch_size: int = 64,
                           display: torch.Tensor | None = None) -> list[Patch]:
    """The `k` images (one patch each) on which `channel` of `layer` fires most, with the patch
    its strongest unit sees (Zeiler & Fergus 2014, Fig. 2).

    `images` (N, C, H, W) are model inputs; crops come from `display` (same shape, e.g. the
    un-normalised pixels) when given. The patch is the unit's theoretical receptive field
    (cnnlab.analyze), clipped to the image, centred on the centroid of |d unit / d input|, which
    finds the unit's position without knowing each layer's padding.
    """
    if images.dim() != 4:
        raise InputShapeError(f"expected images (N, C, H, W); got shape {tuple(images.shape)}")
    find_layer(model, layer)
    best = []   # (score, index, row, col)
    with eval_mode(model), relu_rule(model), torch.no_grad():
        for start in range(0, len(images), batch_size):
            with capture(model, layer) as store:
                model(images[start:start + batch_size])
            out = store["out"]
            if out.dim() != 4:
                raise ConfigError(f"layer {layer!r} has no spatial output (shape "
                                  f"{tuple(out.shape)}); pick a conv or pooling layer")
            if not 0 <= channel < out.shape[1]:
                raise ConfigError(f"layer {layer!r} has {out.shape[1]} channels; got channel "
                                  f"{channel}")
            maps = out[:, channel].flatten(1)                  # (B, h * w)
            score, where = maps.max(1)
            w_ = out.shape[-1]
            for i, (s, p) in enumerate(zip(score.tolist(), where.tolist())):
                best.append((s, start + i, p // w_, p % w_))
    best.sort(key=lambda t: -t[0])
    _, c, h, w = images.shape
    rf = layer_field(model, layer, (c, h, w)) or (h, w)
    shown = images if display is None else display
    patches = []
    for score, idx, row, col in best[:k]:
        cy, cx = _unit_centre(model, images[idx:idx + 1], layer, channel, row, col)
        top, left = _clip_start(cy, rf[0], h), _clip_start(cx, rf[1], w)
        box = (top, left, min(top + rf[0], h), min(left + rf[1], w))
        crop = shown[idx, :, box[0]:box[2], box[1]:box[3]].permute(1, 2, 0).cpu().numpy()
        patches.append(Patch(idx, float(score), (row, col), box, crop))
    return patches


def _unit_centre(model, x, layer, channel, row, col) -> tuple[float, float]:
    """Centroid of |gradient| of one unit with respect to the input: where that unit looks."""
    x = x.detach().clone().requires_grad_(True)
    with eval_mode(model), relu_rule(model), capture(model, layer) as store, torch.enable_grad():
        model(x)
        (g,) = torch.autograd.grad(store["out"][0, channel, row, col], x)
    g = g[0].abs().sum(0)                                        # (H, W)
    if float(g.sum()) == 0.0:   # a dead path: fall back to the unit's cell on the input grid
        h, w = store["out"].shape[-2:]
        return (row + 0.5) * x.shape[-2] / h, (col + 0.5) * x.shape[-1] / w
    ys = torch.arange(g.shape[0], dtype=g.dtype)[:, None]
    xs = torch.arange(g.shape[1], dtype=g.dtype)[None, :]
    return float((g * ys).sum() / g.sum()), float((g * xs).sum() / g.sum())


def _clip_start(centre: float, size: int, side: int) -> int:
    start = int(round(centre - (size - 1) / 2))
    return max(0, min(start, max(side - size, 0)))


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur per channel, reflect-padded so the borders do not darken."""
    radius = max(1, int(round(2 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k1 = torch.exp(-0.5 * (t / sigma) ** 2)
    k1 = k1 / k1.sum()
    c = x.shape[1]
    rows = k1.view(1, 1, 1, -1).repeat(c, 1, 1, 1)          # (C, 1, 1, k)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), rows, groups=c)
    cols = k1.view(1, 1, -1, 1).repeat(c, 1, 1, 1)          # (C, 1, k, 1)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), cols, groups=c)


def class_model(model: nn.Module, target: int, image_size: int | None = None, steps: int = 100,
                lr: float = 0.1, l2: float = 0.01, jitter: int = 2, blur_every: int = 4,
                blur_sigma: float = 0.5, seed: int = 0, in_chans: int | None = None
                ) -> tuple[torch.Tensor, list[float]]:
    """``(image (1, C, S, S) in input space, class score per step)``: the class model of
    Simonyan et al. 2014 (sec. 2), ``argmax_I S_c(I) - lambda * ||I||^2``, by gradient ascent.

    Each step moves the image by `lr` along the score's gradient, normalised by its mean
    magnitude so `lr` is in input units whatever the network's scale, then applies the L2 term
    as a decay ``I <- (1 - l2) I`` (the same penalty as a separate step; Yosinski et al. 2015
    write it this way, and it keeps an untrained net's tiny gradients from being swamped).
    Departures, both from Yosinski et al. 2015 and both optional: a random shift of up to
    `jitter` pixels before each step and a Gaussian blur every `blur_every` steps (0: off), which
    keep the image from turning into high-frequency noise. The last score is measured unshifted.
    """
    if steps < 0 or not 0.0 <= l2 < 1.0 or lr <= 0:
        raise ConfigError(f"class model needs steps >= 0, 0 <= l2 < 1 and lr > 0; got steps "
                          f"{steps}, l2 {l2}, lr {lr}")
    size = image_size or getattr(model, "default_input_size", None) or 224
    c = in_chans or model_in_chans(model)
    gen = torch.Generator().manual_seed(seed)
    x = (0.01 * torch.randn(1, c, size, size, generator=gen)).requires_grad_(True)
    scores = []
    with eval_mode(model), relu_rule(model), torch.enable_grad():
        for step in range(steps + 1):
            dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=gen).tolist()
                      if jitter and step < steps else (0, 0))
            logits = model(torch.roll(x, (dy, dx), dims=(2, 3)))
            score = logits[0, predicted_or(model, logits, target)]
            scores.append(float(score.detach()))
            if step == steps:
                break   # the last pass only measures the final image
            grad, = torch.autograd.grad(score, x)
            with torch.no_grad():
                x += lr * grad / (grad.abs().mean() + 1e-12)
                x *= 1.0 - l2
                if blur_every and (step + 1) % blur_every == 0:
                    x.copy_(_gaussian_blur(x, blur_sigma))
    return x.detach(), scores
