"""TrivialAugment (Müller & Hutter 2021): one random op at one random strength per image.

The paper's "wide" search space: 14 ops (shears and rotations up to 0.99 and 135 degrees,
translations up to 32 px, enhancement factors 0.01-1.99, ...), strength one of 31 evenly spaced
levels. Each image draws its op, level and sign; the batch is then processed op by op (one
vectorised call per op on the images that drew it, never a loop over images).
"""

from __future__ import annotations

from cnnlab.augment.colour import adjust_brightness, adjust_contrast, adjust_saturation
from cnnlab.augment.compose import check_batch, from_unit, per_sample, to_unit
from cnnlab.augment.geometric import affine_matrices, apply_affine

NUM_LEVELS = 31        # strengths 0, 1/30, ..., 1 (the paper's 31 bins)


def _factor(m, sign):
    return 1.0 + sign * m * 0.99          # enhancement factors in [0.01, 1.99] (wide space)


def _shear(xf, m, sign, axis: int):
    import torch

    n = xf.shape[0]
    s = sign * m * 0.99                   # shear as tan(angle), up to 0.99
    zero = torch.zeros(n)
    mat = affine_matrices(zero, s if axis == 0 else zero, s if axis == 1 else zero, torch.ones(n))
    return apply_affine(xf, mat, torch.zeros(n, 2))


def _translate(xf, m, sign, axis: int):
    import torch

    n = xf.shape[0]
    t = torch.zeros(n, 2)
    t[:, axis] = sign * m * 32.0          # up to 32 pixels (wide space)
    return apply_affine(xf, torch.eye(2).expand(n, 2, 2), t)


def _rotate(xf, m, sign):
    import torch

    n = xf.shape[0]
    zero = torch.zeros(n)
    return apply_affine(xf, affine_matrices(sign * m * 135.0, zero, zero, torch.ones(n)),
                        torch.zeros(n, 2))


def _quantise(xf):
    import torch

    return (xf.clamp(0, 1) * 255).round_().to(torch.uint8)


def autocontrast(xf, m=None, sign=None):
    """Stretch each channel of each image to span [0, 1]; flat channels are left as they are."""
    lo = xf.amin(dim=(2, 3), keepdim=True)
    hi = xf.amax(dim=(2, 3), keepdim=True)
    span = hi - lo
    flat = span <= 0
    return ((xf - lo) / span.masked_fill(flat, 1.0)).where(~flat, xf)


def equalize(xf, m=None, sign=None):
    """Histogram equalisation per image and channel, with Pillow's ImageOps.equalize rule."""
    import torch

    n, c, h, w = xf.shape
    q = _quantise(xf).reshape(n * c, h * w).long()
    hist = torch.zeros(n * c, 256).scatter_add_(1, q, torch.ones(n * c, h * w))
    last = 255 - (hist > 0).flip(1).int().argmax(dim=1)          # last level that occurs
    step = torch.div(h * w - hist.gather(1, last[:, None])[:, 0], 255, rounding_mode="floor")
    safe = step.clamp(min=1)[:, None]
    lut = torch.div(hist.cumsum(1) + torch.div(safe, 2, rounding_mode="floor"), safe,
                    rounding_mode="floor")
    lut = torch.cat([torch.zeros(n * c, 1), lut[:, :-1]], dim=1).clamp_(0, 255)
    lut = torch.where(step[:, None] > 0, lut, torch.arange(256.0)[None])
    return (lut.gather(1, q) / 255.0).reshape(n, c, h, w)


def posterize(xf, m, sign=None):
    """Keep the top 8 - round(6 m) bits of each 8-bit value (2..8 bits)."""
    import torch

    bits = 8 - (m * 6).round().long()
    mask = (255 - (2 ** (8 - bits) - 1)).to(torch.uint8)
    return (_quantise(xf) & per_sample(mask, xf)).float() / 255.0


def solarize(xf, m, sign=None):
    """Invert values at or above the threshold 1 - m."""
    t = per_sample(1.0 - m, xf)
    return (1.0 - xf).where(xf >= t, xf)


def sharpness(xf, m, sign):
    """Blend with a 3x3-smoothed copy (Pillow's SMOOTH kernel); factor > 1 sharpens."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = xf.shape
    if h < 3 or w < 3:
        return xf
    k = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0
    smooth = F.conv2d(xf.reshape(n * c, 1, h, w), k[None, None]).reshape(n, c, h - 2, w - 2)
    degenerate = xf.clone()
    degenerate[..., 1:-1, 1:-1] = smooth                         # borders stay as they were
    f = per_sample(_factor(m, sign), xf)
    return degenerate + f * (xf - degenerate)


OPS = {
    "identity": lambda xf, m, s: xf,
    "shear_x": lambda xf, m, s: _shear(xf, m, s, 0),
    "shear_y": lambda xf, m, s: _shear(xf, m, s, 1),
    "translate_x": lambda xf, m, s: _translate(xf, m, s, 0),
    "translate_y": lambda xf, m, s: _translate(xf, m, s, 1),
    "rotate": _rotate,
    "brightness": lambda xf, m, s: adjust_brightness(xf, _factor(m, s)),
    "color": lambda xf, m, s: adjust_saturation(xf, _factor(m, s)),
    "contrast": lambda xf, m, s: adjust_contrast(xf, _factor(m, s)),
    "sharpness": sharpness,
    "posterize": posterize,
    "solarize": solarize,
    "autocontrast": autocontrast,
    "equalize": equalize,
}


class TrivialAugment:
    """TrivialAugment Wide (Müller & Hutter 2021): one op from `ops` per image, random level."""

    def __init__(self, ops=tuple(OPS)):
        from cnnlab.errors import ConfigError

        unknown = [o for o in ops if o not in OPS]
        if unknown or not ops:
            raise ConfigError(f"unknown TrivialAugment op(s) {unknown}; choose from {list(OPS)}")
        self.ops = tuple(ops)

    def __call__(self, x, generator=None):
        import torch

        x = check_batch(x, "TrivialAugment")
        n = x.shape[0]
        op = torch.randint(len(self.ops), (n,), generator=generator)
        m = torch.randint(NUM_LEVELS, (n,), generator=generator).float() / (NUM_LEVELS - 1)
        sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        xf = to_unit(x)
        out = xf.clone()
        for k, name in enumerate(self.ops):
            idx = (op == k).nonzero()[:, 0]
            if len(idx) and name != "identity":
                out[idx] = OPS[name](xf[idx], m[idx], sign[idx]).clamp(0, 1)
        return from_unit(out, x.dtype)

    def __repr__(self) -> str:
        return f"TrivialAugment(ops={len(self.ops)})"
