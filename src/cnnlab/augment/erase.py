"""Occlusion augmentations: cutout (DeVries & Taylor 2017) and random erasing (Zhong et al. 2020).

Both build a per-sample rectangle mask from coordinate comparisons and apply it with one
``torch.where`` over the batch.
"""

from __future__ import annotations

import math

from cnnlab.augment.compose import bernoulli, check_batch, per_sample, uniform
from cnnlab.errors import ConfigError


def box_mask(h: int, w: int, y0, x0, y1, x1):
    """(N, 1, H, W) bool mask, True inside [y0, y1) x [x0, x1) per sample."""
    import torch

    rows = torch.arange(h)[None, :, None]
    cols = torch.arange(w)[None, None, :]
    m = ((rows >= y0[:, None, None]) & (rows < y1[:, None, None])
         & (cols >= x0[:, None, None]) & (cols < x1[:, None, None]))
    return m[:, None]


def cutout_boxes(n: int, h: int, w: int, size: int, generator=None):
    """(y0, x0, y1, x1) of size x size squares centred anywhere in the image, clipped to it."""
    import torch

    cy = torch.randint(h, (n,), generator=generator)
    cx = torch.randint(w, (n,), generator=generator)
    half = size // 2
    y0, x0 = (cy - half).clamp(0, h), (cx - half).clamp(0, w)
    y1, x1 = (cy - half + size).clamp(0, h), (cx - half + size).clamp(0, w)
    return y0, x0, y1, x1


class Cutout:
    """Zero a size x size square per image (DeVries & Taylor 2017; 16 px on CIFAR-10).

    The centre is uniform over the image, so near the border part of the square falls outside
    and fewer pixels are zeroed, as in the paper. `p` is the chance an image gets a patch.
    """

    def __init__(self, size: int = 16, p: float = 1.0):
        if int(size) < 0:
            raise ConfigError(f"Cutout size must be >= 0; got {size}")
        self.size, self.p = int(size), float(p)

    def __call__(self, x, generator=None):
        import torch

        x = check_batch(x, "Cutout")
        n, _, h, w = x.shape
        y0, x0, y1, x1 = cutout_boxes(n, h, w, self.size, generator)
        on = bernoulli(n, self.p, generator)
        mask = box_mask(h, w, y0, x0, y1, x1) & per_sample(on, x)
        return torch.where(mask, torch.zeros((), dtype=x.dtype), x)

    def __repr__(self) -> str:
        return f"Cutout(size={self.size}, p={self.p})"


class RandomErasing:
    """Erase a random rectangle per image with probability p (Zhong et al. 2020, Alg. 1).

    Paper defaults: p 0.5, area 2%-40% of the image, aspect r1 = 0.3 to 1/r1, filled with random
    values ("random") or a constant in unit scale. Up to 10 rectangle draws per image, the first
    that fits is used (the paper loops until one fits; 10 tries almost always succeed).
    """

    def __init__(self, p: float = 0.5, scale=(0.02, 0.4), ratio=(0.3, 1 / 0.3), value="random"):
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ConfigError(f"RandomErasing scale must satisfy 0 < low <= high <= 1; "
                              f"got {scale!r}")
        if value != "random" and not isinstance(value, (int, float)):
            raise ConfigError(f"RandomErasing value must be 'random' or a number; got {value!r}")
        self.p, self.scale, self.ratio, self.value = float(p), tuple(scale), tuple(ratio), value

    def __call__(self, x, generator=None):
        import torch

        x = check_batch(x, "RandomErasing")
        n, c, h, w = x.shape
        tries = 10
        area = uniform(n * tries, *self.scale, generator).reshape(n, tries) * (h * w)
        ar = torch.exp(uniform(n * tries, math.log(self.ratio[0]), math.log(self.ratio[1]),
                               generator)).reshape(n, tries)
        eh, ew = torch.sqrt(area * ar).round().long(), torch.sqrt(area / ar).round().long()
        ok = (eh >= 1) & (eh < h) & (ew >= 1) & (ew < w)
        first = ok.int().argmax(dim=1)
        pick = torch.arange(n)
        eh, ew = eh[pick, first], ew[pick, first]
        y0 = (torch.rand(n, generator=generator) * (h - eh + 1)).floor().long()
        x0 = (torch.rand(n, generator=generator) * (w - ew + 1)).floor().long()
        on = bernoulli(n, self.p, generator) & ok.any(dim=1)
        mask = box_mask(h, w, y0, x0, y0 + eh, x0 + ew) & per_sample(on, x)
        if self.value == "random":
            fill = torch.rand(x.shape, generator=generator)
            fill = (fill * 256).floor().clamp_(max=255).to(torch.uint8) if x.dtype == torch.uint8 \
                else fill.to(x.dtype)
        else:
            v = float(self.value)
            fill = torch.tensor(round(v * 255) if x.dtype == torch.uint8 else v, dtype=x.dtype)
        return torch.where(mask, fill, x)

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio})"
