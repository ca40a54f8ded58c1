"""Geometric augmentations on batches: flips, crops, random-resized crops, rotation and affine.

Every random transform draws its own parameters per sample. Integer crops are one gather over the
batch; rotation and affine maps are one ``affine_grid`` + ``grid_sample`` call with a (N, 2, 3)
matrix per sample. Two loop over images because it measured faster on CPU (see the comments):
flips copy only the chosen images, and random-resized crops call torch's uint8 resize per box.
"""

from __future__ import annotations

import math

from cnnlab.augment.compose import bernoulli, check_batch, uniform
from cnnlab.errors import ConfigError, InputShapeError


def _size2(size) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if int(h) < 1 or int(w) < 1:
        raise ConfigError(f"output size must be >= 1 pixel per side; got {size!r}")
    return int(h), int(w)


def sample_affine(x, theta, out_size=None, fill: float = 0.0, mode: str = "bilinear",
                  padding_mode: str = "zeros"):
    """Resample `x` (N, C, H, W) by per-sample matrices `theta` (N, 2, 3) in grid_sample's units.

    Positions outside the image read `fill` (unit scale, 0..1). uint8 goes through float32 and is
    rounded back; the output keeps the input dtype.
    """
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    oh, ow = (h, w) if out_size is None else out_size
    xf = x.float() if x.dtype == torch.uint8 else x
    fill_v = fill * 255.0 if x.dtype == torch.uint8 else fill
    if fill_v and padding_mode == "zeros":
        xf = xf - fill_v          # zeros padding then reads as `fill` once we add it back
    grid = F.affine_grid(theta.to(xf.dtype), [n, c, oh, ow], align_corners=False)
    out = F.grid_sample(xf, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    if fill_v and padding_mode == "zeros":
        out = out + fill_v
    if x.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out


def pixel_affine_to_theta(a, t, in_hw, out_hw):
    """grid_sample matrices from a pixel-space map: source = a @ out + t (centre-origin pixels).

    Normalised coordinates scale x by W/2 and y by H/2, so a rotation written in pixels stays a
    rotation on non-square images (theta = D_in^-1 [a | t] D_out).
    """
    import torch

    (h, w), (oh, ow) = in_hw, out_hw
    d_in = torch.tensor([2.0 / w, 2.0 / h])
    d_out = torch.tensor([ow / 2.0, oh / 2.0])
    theta = torch.empty(a.shape[0], 2, 3)
    theta[:, :, :2] = d_in[None, :, None] * a * d_out[None, None, :]
    theta[:, :, 2] = d_in[None, :] * t
    return theta


class HorizontalFlip:
    """Mirror each image left-right with probability p (Krizhevsky et al. 2012, Sec. 4.1)."""

    def __init__(self, p: float = 0.5):
        self.p = float(p)

    def __call__(self, x, generator=None):
        x = check_batch(x, "HorizontalFlip")
        flip = bernoulli(x.shape[0], self.p, generator)
        out = x.clone()
        # copying the chosen images one by one beat torch.where(mask, x.flip(-1), x) 9x on
        # 128 px uint8 batches (the broadcast where is slow on CPU) and ties at 32 px
        for i in flip.nonzero()[:, 0].tolist():
            out[i] = x[i].flip(-1)
        return out

    def __repr__(self) -> str:
        return f"HorizontalFlip(p={self.p})"


class RandomCrop:
    """Pad then crop `size` at a random offset per image (CIFAR: pad 4, crop 32; He et al. 2016).

    With padding 0 on 256-pixel images and size 224 it is AlexNet's crop (Krizhevsky et al. 2012).
    """

    def __init__(self, size=32, padding: int = 4, fill: float = 0.0,
                 padding_mode: str = "constant"):
        self.size = _size2(size)
        self.padding = int(padding)
        self.fill = float(fill)
        if padding_mode not in ("constant", "reflect", "replicate"):
            raise ConfigError(f"padding_mode must be constant, reflect or replicate; "
                              f"got {padding_mode!r}")
        self.padding_mode = padding_mode

    def _pad(self, x):
        import torch
        import torch.nn.functional as F

        p = self.padding
        if p == 0:
            return x
        if self.padding_mode == "constant":
            value = self.fill * 255.0 if x.dtype == torch.uint8 else self.fill
            return F.pad(x, (p, p, p, p), mode="constant", value=value)
        # reflect/replicate are float-only in torch; uint8 values survive the round trip exactly
        return F.pad(x.float(), (p, p, p, p), mode=self.padding_mode).to(x.dtype)

    def __call__(self, x, generator=None):
        import torch

        x = check_batch(x, "RandomCrop")
        n, _, h, w = x.shape
        ch, cw = self.size
        hp, wp = h + 2 * self.padding, w + 2 * self.padding
        if hp < ch or wp < cw:
            raise InputShapeError(f"RandomCrop of {ch}x{cw} needs images of at least that size "
                                  f"after padding {self.padding}; got {h}x{w}. Resize first or "
                                  f"use a smaller crop.")
        if self.padding_mode == "reflect" and self.padding >= min(h, w):
            raise InputShapeError(f"reflect padding {self.padding} needs images larger than it; "
                                  f"got {h}x{w}. Use padding_mode='constant'.")
        oy = torch.randint(hp - ch + 1, (n,), generator=generator)
        ox = torch.randint(wp - cw + 1, (n,), generator=generator)
        return crop_at(self._pad(x), oy, ox, (ch, cw))

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


def crop_at(x, oy, ox, size):
    """Crop (N, C, H, W) to `size` at per-sample top-left offsets (oy, ox), as one gather."""
    import torch

    n, c, h, w = x.shape
    ch, cw = size
    # flat index of every output pixel in its own image, plus a per-sample offset
    base = (torch.arange(c)[:, None, None] * (h * w) + torch.arange(ch)[None, :, None] * w
            + torch.arange(cw)[None, None, :]).reshape(1, -1)
    idx = base + (oy * w + ox)[:, None]                         # (N, C * ch * cw)
    return x.reshape(n, -1).gather(1, idx).reshape(n, c, ch, cw)


def sample_boxes(n, h, w, scale, ratio, generator=None, tries: int = 10):
    """(x0, y0, bw, bh) integer boxes per sample, drawn as in Szegedy et al. 2015 (Inception).

    Area fraction ~ U(scale), aspect ratio log-uniform in `ratio`; up to `tries` draws per sample,
    the first that fits wins (vectorised over samples and tries). Samples with none that fit take
    the largest centred box whose ratio is clipped to `ratio`, as torchvision does.
    """
    import torch

    area = uniform(n * tries, scale[0], scale[1], generator).reshape(n, tries) * (h * w)
    log_r = uniform(n * tries, math.log(ratio[0]), math.log(ratio[1]), generator)
    ar = torch.exp(log_r).reshape(n, tries)
    bw = torch.sqrt(area * ar).round()
    bh = torch.sqrt(area / ar).round()
    ok = (bw >= 1) & (bw <= w) & (bh >= 1) & (bh <= h)
    first = ok.int().argmax(dim=1)                              # index of the first fitting try
    pick = torch.arange(n)
    bw, bh, found = bw[pick, first], bh[pick, first], ok.any(dim=1)
    in_ratio = w / h
    if in_ratio < ratio[0]:
        fw, fh = w, max(1, round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        fw, fh = max(1, round(h * ratio[1])), h
    else:
        fw, fh = w, h
    bw = torch.where(found, bw, torch.tensor(float(fw))).long()
    bh = torch.where(found, bh, torch.tensor(float(fh))).long()
    x0 = (torch.rand(n, generator=generator) * (w - bw + 1)).floor().long()
    y0 = (torch.rand(n, generator=generator) * (h - bh + 1)).floor().long()
    return x0, y0, bw, bh


def resize_boxes(x, x0, y0, bw, bh, size, antialias: bool = True):
    """Crop box i = (x0, y0, bw, bh)[i] of image i and resize it to `size`, keeping the dtype."""
    import torch
    import torch.nn.functional as F

    n, c = x.shape[:2]
    out = torch.empty(n, c, *size, dtype=x.dtype)
    # One interpolate call per image: every box has its own size, and torch's uint8 resize
    # kernel on each crop was 6x faster (CPU time, 256 x 160 px -> 128) than one batched
    # grid_sample, which needs the whole batch in float32 first.
    for i, (a, b, cw, ch) in enumerate(zip(x0.tolist(), y0.tolist(), bw.tolist(), bh.tolist())):
        out[i] = F.interpolate(x[i:i + 1, :, b:b + ch, a:a + cw], size=size, mode="bilinear",
                               align_corners=False, antialias=antialias)[0]
    return out


class RandomResizedCrop:
    """Crop a random area/aspect box and resize it to `size` (Szegedy et al. 2015, GoogLeNet).

    Defaults: area 8%-100% of the image, aspect 3/4-4/3. Bilinear with antialiasing (as
    torchvision's tensor resize), done by ``F.interpolate`` directly on uint8.
    """

    def __init__(self, size=224, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), antialias: bool = True):
        self.size = _size2(size)
        if not 0 < scale[0] <= scale[1]:
            raise ConfigError(f"scale must be 0 < low <= high; got {scale!r}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ConfigError(f"ratio must be 0 < low <= high; got {ratio!r}")
        self.scale, self.ratio, self.antialias = tuple(scale), tuple(ratio), antialias

    def __call__(self, x, generator=None):
        x = check_batch(x, "RandomResizedCrop")
        n, _, h, w = x.shape
        x0, y0, bw, bh = sample_boxes(n, h, w, self.scale, self.ratio, generator)
        return resize_boxes(x, x0, y0, bw, bh, self.size, self.antialias)

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class ScaleJitter:
    """VGG's scale jittering (Simonyan & Zisserman 2015, Sec. 3.1): rescale, then crop `size`.

    Each image is rescaled so its shorter side is S ~ U[min_side, max_side] (paper: 256-512 for
    224 crops) and a random size x size window is cut out, in one step: the window's footprint in
    the original image is resized, so the rescaled image is never built. Where S would make the
    image smaller than the crop, the whole side is used.
    """

    def __init__(self, size=224, min_side: int = 256, max_side: int = 512,
                 antialias: bool = True):
        self.size = _size2(size)
        if not 0 < min_side <= max_side:
            raise ConfigError(f"ScaleJitter needs 0 < min_side <= max_side; got {min_side}, "
                              f"{max_side}")
        self.min_side, self.max_side, self.antialias = int(min_side), int(max_side), antialias

    def __call__(self, x, generator=None):
        import torch

        x = check_batch(x, "ScaleJitter")
        n, _, h, w = x.shape
        side = torch.randint(self.min_side, self.max_side + 1, (n,), generator=generator)
        zoom = side.float() / min(h, w)                         # rescale factor per image
        bh = (self.size[0] / zoom).round().long().clamp(1, h)
        bw = (self.size[1] / zoom).round().long().clamp(1, w)
        y0 = (torch.rand(n, generator=generator) * (h - bh + 1)).floor().long()
        x0 = (torch.rand(n, generator=generator) * (w - bw + 1)).floor().long()
        return resize_boxes(x, x0, y0, bw, bh, self.size, self.antialias)

    def __repr__(self) -> str:
        return f"ScaleJitter(size={self.size}, sides=({self.min_side}, {self.max_side}))"


def affine_matrices(angle_deg, shear_x, shear_y, scale):
    """Forward (N, 2, 2) maps: rotation (degrees) after shear (tan of its angle), times scale."""
    import torch

    r = torch.deg2rad(angle_deg)
    cos, sin = torch.cos(r), torch.sin(r)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -1)
    one = torch.ones_like(shear_x)
    shear = torch.stack([torch.stack([one, shear_y], -1), torch.stack([shear_x, one], -1)], -1)
    return (rot @ shear) * scale[:, None, None]


def apply_affine(x, m, translate_px, fill: float = 0.0, mode: str = "bilinear"):
    """Warp each image by its forward map `m` (N, 2, 2) about the centre, then shift (N, 2) px."""
    import torch

    h, w = x.shape[-2:]
    a = torch.linalg.inv(m)                                     # output -> source
    t = -(a @ translate_px[:, :, None])[:, :, 0]
    return sample_affine(x, pixel_affine_to_theta(a, t, (h, w), (h, w)), fill=fill, mode=mode)


class RandomAffine:
    """Random rotation, translation, scale and shear per image (Simard et al. 2003, affine).

    degrees: rotation drawn from U(-degrees, degrees); translate: (fx, fy) fractions of width and
    height; scale: (low, high); shear: degrees along x drawn from U(-shear, shear). Uncovered
    pixels read `fill` (unit scale).
    """

    def __init__(self, degrees: float = 0.0, translate=None, scale=None, shear: float = 0.0,
                 fill: float = 0.0):
        self.degrees, self.translate, self.scale = float(degrees), translate, scale
        self.shear, self.fill = float(shear), float(fill)

    def __call__(self, x, generator=None):
        import torch

        x = check_batch(x, type(self).__name__)
        n, _, h, w = x.shape
        angle = uniform(n, -self.degrees, self.degrees, generator)
        fx, fy = self.translate or (0.0, 0.0)
        tr = torch.stack([uniform(n, -fx * w, fx * w, generator),
                          uniform(n, -fy * h, fy * h, generator)], dim=1)
        lo, hi = self.scale or (1.0, 1.0)
        s = uniform(n, lo, hi, generator)
        sh = torch.tan(torch.deg2rad(uniform(n, -self.shear, self.shear, generator)))
        m = affine_matrices(angle, sh, torch.zeros(n), s)
        return apply_affine(x, m, tr, fill=self.fill)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(degrees={self.degrees}, translate={self.translate}, "
                f"scale={self.scale}, shear={self.shear})")


class RandomRotation(RandomAffine):
    """Rotate each image by U(-degrees, degrees) about its centre."""

    def __init__(self, degrees: float = 15.0, fill: float = 0.0):
        super().__init__(degrees=degrees, fill=fill)


class Resize:
    """Deterministic resize: an int sets the shorter side (aspect kept), a pair sets (H, W)."""

    def __init__(self, size, antialias: bool = True):
        self.size, self.antialias = size, antialias

    def __call__(self, x, generator=None):
        import torch.nn.functional as F

        x = check_batch(x, "Resize")
        h, w = x.shape[-2:]
        if isinstance(self.size, int):
            s = _size2(self.size)[0]
            oh, ow = (s, max(1, round(w * s / h))) if h <= w else (max(1, round(h * s / w)), s)
        else:
            oh, ow = _size2(self.size)
        if (oh, ow) == (h, w):
            return x
        # torch resizes uint8 directly (rounded), no float32 copy of the batch needed
        return F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False,
                             antialias=self.antialias)

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class CenterCrop:
    """Deterministic centred crop of `size` (offsets rounded down)."""

    def __init__(self, size):
        self.size = _size2(size)

    def __call__(self, x, generator=None):
        x = check_batch(x, "CenterCrop")
        h, w = x.shape[-2:]
        ch, cw = self.size
        if ch > h or cw > w:
            raise InputShapeError(f"CenterCrop of {ch}x{cw} needs images at least that big; got "
                                  f"{h}x{w}. Resize first (e.g. Resize({max(ch, cw)})).")
        top, left = (h - ch) // 2, (w - cw) // 2
        return x[..., top:top + ch, left:left + cw].contiguous()

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"
