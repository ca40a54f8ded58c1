"""Colour augmentations: brightness/contrast/saturation/hue jitter and AlexNet's PCA lighting.

Colour arithmetic happens on float32 in [0, 1] (uint8 is divided by 255 and rounded back); results
are clipped to [0, 1]. Single-channel (grey) batches get brightness and contrast only: saturation,
hue and PCA lighting need three channels.
"""

from __future__ import annotations

from cnnlab.augment.compose import chunks, check_batch, from_unit, per_sample, to_unit, uniform
from cnnlab.errors import ConfigError, InputShapeError

# ITU-R 601-2 luma, the weights Pillow's convert("L") uses
LUMA = (0.299, 0.587, 0.114)


def grey(xf):
    """(N, 1, H, W) luma of unit-float RGB (N, 3, H, W); a grey batch is returned as is."""
    if xf.shape[1] == 1:
        return xf
    r, g, b = xf[:, 0:1], xf[:, 1:2], xf[:, 2:3]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


def adjust_brightness(xf, factor):
    """Scale intensities by a per-sample factor (N,): 0 gives black, 1 the image."""
    return xf * per_sample(factor, xf)


def adjust_contrast(xf, factor):
    """Blend each image with its mean grey level: factor 0 gives flat grey, 1 the image."""
    m = grey(xf).mean(dim=(1, 2, 3), keepdim=True)
    f = per_sample(factor, xf)
    return (xf - m) * f + m


def adjust_saturation(xf, factor):
    """Blend each image with its own grey version: factor 0 gives grey, 1 the image."""
    if xf.shape[1] != 3:
        return xf
    g = grey(xf)
    return (xf - g) * per_sample(factor, xf) + g


def _yiq():
    import torch

    to_yiq = torch.tensor([[0.299, 0.587, 0.114],
                           [0.596, -0.274, -0.322],
                           [0.211, -0.523, 0.312]])
    return to_yiq, torch.linalg.inv(to_yiq)


def adjust_hue(xf, shift):
    """Rotate chroma about the grey axis by `shift` turns (N,), in YIQ space.

    A linear stand-in for the HSV hue shift of torchvision: one 3x3 matrix per image instead of
    an RGB->HSV->RGB round trip, with the same range (-0.5..0.5 turns) and grey kept fixed.
    """
    import torch

    if xf.shape[1] != 3:
        return xf
    return torch.einsum("nij,njhw->nihw", hue_matrices(shift), xf)


def hue_matrices(shift):
    """(N, 3, 3) RGB maps rotating chroma by `shift` turns about the grey axis (YIQ space)."""
    import math

    import torch

    to_yiq, from_yiq = _yiq()
    ang = shift * (2 * math.pi)
    cos, sin = torch.cos(ang), torch.sin(ang)
    rot = torch.zeros(len(shift), 3, 3)
    rot[:, 0, 0] = 1.0
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    return from_yiq @ rot @ to_yiq


def _range(v, name: str, centre: float = 1.0, limit=None):
    if isinstance(v, (int, float)):
        if v < 0:
            raise ConfigError(f"ColorJitter {name} must be >= 0; got {v}")
        lo, hi = centre - v, centre + v
        lo = max(lo, 0.0) if limit is None else max(lo, limit[0])
        hi = hi if limit is None else min(hi, limit[1])
        return (float(lo), float(hi))
    lo, hi = v
    if lo > hi:
        raise ConfigError(f"ColorJitter {name} range must be (low, high); got {v!r}")
    return (float(lo), float(hi))


class ColorJitter:
    """Random brightness, contrast, saturation and hue per image, applied in that fixed order.

    The four steps are fused into one 3x3 matrix per image and the result is clipped once at the
    end; torchvision clips after each step and shuffles the order. Same ranges, one pass over the
    pixels instead of eight.

    A number v means factors drawn from U(1 - v, 1 + v) (hue: shifts from U(-v, v) turns, v <= 0.5);
    a pair gives the range. Defaults 0.4/0.4/0.4 are the ResNet recipe of fb.resnet.torch (Gross &
    Wilber 2016) that later ImageNet recipes copied; hue is off by default as there.
    """

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.0):
        self.brightness = _range(brightness, "brightness")
        self.contrast = _range(contrast, "contrast")
        self.saturation = _range(saturation, "saturation")
        self.hue = _range(hue, "hue", centre=0.0, limit=(-0.5, 0.5))

    def matrices(self, n: int, channels: int, generator=None):
        """Per-image (n, C, C) colour matrices and contrast weights (n,) for :meth:`__call__`.

        Brightness b, contrast c, saturation s and hue h compose into one linear map:
        out = H S (c b) x + (1 - c) b mean_grey(x), because saturation and hue keep grey fixed.
        """
        import torch

        # all factors are drawn first, in a fixed order, so the stream does not depend on the data
        b = uniform(n, *self.brightness, generator)
        c = uniform(n, *self.contrast, generator)
        s = uniform(n, *self.saturation, generator)
        h = uniform(n, *self.hue, generator)
        if channels != 3:
            return (b * c).reshape(n, 1, 1), b * (1 - c)
        luma = torch.tensor(LUMA)
        eye = torch.eye(3)
        sat = s[:, None, None] * eye + (1 - s)[:, None, None] * torch.ones(3, 1) * luma[None, :]
        m = hue_matrices(h) @ sat if self.hue != (0.0, 0.0) else sat
        return m * (b * c)[:, None, None], b * (1 - c)

    def __call__(self, x, generator=None):
        import torch

        x = check_batch(x, "ColorJitter")
        n, ch, hgt, wid = x.shape
        m, w_mean = self.matrices(n, ch, generator)
        # uint8 stays on the 0..255 scale: the map is linear, so only the clip bound changes
        top = 255.0 if x.dtype == torch.uint8 else 1.0
        luma = torch.tensor(LUMA)
        out = torch.empty_like(x)
        for s in chunks(n, ch * hgt * wid):
            flat = x[s].reshape(-1, ch, hgt * wid).float()
            mean = flat.mean(dim=2) @ luma if ch == 3 else flat.mean(dim=(1, 2))
            y = torch.baddbmm((w_mean[s] * mean)[:, None, None].expand(-1, ch, 1), m[s], flat)
            y = y.clamp_(0.0, top)
            out[s] = (y.round_() if x.dtype == torch.uint8 else y).reshape(-1, ch, hgt, wid)
        return out

    def __repr__(self) -> str:
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue})")


def pca_lighting_stats(images, batch_size: int = 4096):
    """(eigval (3,), eigvec (3, 3) columns) of the RGB covariance of a training set, unit scale.

    Krizhevsky et al. 2012, Sec. 4.1: PCA on the set of RGB pixel values of the training images.
    Accumulated in float64 over chunks, so uint8 sets of any size fit in memory.
    """
    import torch

    images = torch.as_tensor(images)
    check_batch(images, "pca_lighting_stats")
    if images.shape[1] != 3:
        raise InputShapeError(f"PCA lighting needs RGB images (N, 3, H, W); got "
                              f"{images.shape[1]} channel(s)")
    s1 = torch.zeros(3, dtype=torch.float64)
    s2 = torch.zeros(3, 3, dtype=torch.float64)
    count = 0
    for i in range(0, images.shape[0], batch_size):
        p = to_unit(images[i:i + batch_size]).double().permute(1, 0, 2, 3).reshape(3, -1)
        s1 += p.sum(dim=1)
        s2 += p @ p.T
        count += p.shape[1]
    if count < 2:
        raise InputShapeError("PCA lighting statistics need at least 2 pixels")
    mean = s1 / count
    cov = (s2 - count * torch.outer(mean, mean)) / (count - 1)
    eigval, eigvec = torch.linalg.eigh(cov)
    return eigval.clamp(min=0).float(), eigvec.float()


class PCALighting:
    """AlexNet's "fancy PCA" lighting noise (Krizhevsky et al. 2012, Sec. 4.1).

    Each image gets eigvec @ (alpha * eigval) added to every pixel, alpha ~ N(0, std) per
    component and image; std 0.1 as in the paper. Eigenvalues and eigenvectors come from
    :func:`pca_lighting_stats` on the training set (unit scale); :meth:`fit` does both.
    """

    def __init__(self, eigval, eigvec, std: float = 0.1):
        import torch

        self.eigval = torch.as_tensor(eigval, dtype=torch.float32).reshape(3)
        self.eigvec = torch.as_tensor(eigvec, dtype=torch.float32).reshape(3, 3)
        self.std = float(std)

    @classmethod
    def fit(cls, images, std: float = 0.1) -> "PCALighting":
        """Compute the statistics from training images (N, 3, H, W) and build the transform."""
        return cls(*pca_lighting_stats(images), std=std)

    def offsets(self, n: int, generator=None):
        """(n, 3) per-image RGB shifts eigvec @ (alpha * eigval)."""
        import torch

        alpha = torch.randn(n, 3, generator=generator) * self.std
        return (alpha * self.eigval) @ self.eigvec.T

    def __call__(self, x, generator=None):
        x = check_batch(x, "PCALighting")
        if x.shape[1] != 3:
            raise InputShapeError(f"PCALighting needs RGB batches (N, 3, H, W); got "
                                  f"{x.shape[1]} channel(s). Leave it out for grey data.")
        shift = self.offsets(x.shape[0], generator)
        return from_unit(to_unit(x) + shift[:, :, None, None], x.dtype)

    def __repr__(self) -> str:
        return f"PCALighting(std={self.std})"
