"""Elastic distortions (Simard, Steinkraus & Platt 2003, Sec. 2).

Each pixel gets a random displacement dx, dy ~ U(-1, 1), the two fields are smoothed by a Gaussian
of standard deviation `sigma` pixels and scaled by `alpha`, and the image is resampled bilinearly
at the displaced positions. The paper's MNIST setting is sigma 4, alpha 34 (on 28 x 28 digits).
"""

from __future__ import annotations

import math

from cnnlab.augment.compose import check_batch
from cnnlab.errors import ConfigError


def gaussian_kernel1d(sigma: float):
    """Normalised 1-D Gaussian taps over +-3 sigma (at least one tap each side)."""
    import torch

    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def displacement_field(n: int, h: int, w: int, alpha: float, sigma: float, generator=None):
    """(N, 2, H, W) smoothed displacements in pixels: channel 0 is dx, channel 1 is dy."""
    import torch
    import torch.nn.functional as F

    d = torch.rand(n * 2, 1, h, w, generator=generator) * 2 - 1
    if sigma > 0:
        k = gaussian_kernel1d(sigma)
        r = len(k) // 2
        # separable smoothing; zero padding, as the field beyond the image is unknown
        d = F.conv2d(d, k.reshape(1, 1, 1, -1), padding=(0, r))
        d = F.conv2d(d, k.reshape(1, 1, -1, 1), padding=(r, 0))
    return d.reshape(n, 2, h, w) * alpha


def elastic_warp(x, disp, fill: float = 0.0):
    """Resample (N, C, H, W) at pixel positions displaced by `disp` (N, 2, H, W) pixels."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    xf = x.float() if x.dtype == torch.uint8 else x
    fill_v = fill * 255.0 if x.dtype == torch.uint8 else fill
    # pixel-centre coordinates in grid_sample's normalised units (align_corners=False)
    gx = (torch.arange(w, dtype=torch.float32) * 2 + 1) / w - 1
    gy = (torch.arange(h, dtype=torch.float32) * 2 + 1) / h - 1
    grid = torch.stack([gx[None, None, :] + disp[:, 0] * (2.0 / w),
                        gy[None, :, None] + disp[:, 1] * (2.0 / h)], dim=-1)   # (N, H, W, 2)
    out = F.grid_sample(xf - fill_v, grid.to(xf.dtype), mode="bilinear", padding_mode="zeros",
                        align_corners=False) + fill_v
    if x.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out


class ElasticDistortion:
    """Random elastic distortion per image (Simard et al. 2003); alpha 34, sigma 4 by default."""

    def __init__(self, alpha: float = 34.0, sigma: float = 4.0, fill: float = 0.0):
        if alpha < 0 or sigma < 0:
            raise ConfigError(f"elastic alpha and sigma must be >= 0; got alpha={alpha}, "
                              f"sigma={sigma}")
        self.alpha, self.sigma, self.fill = float(alpha), float(sigma), float(fill)

    def __call__(self, x, generator=None):
        x = check_batch(x, "ElasticDistortion")
        n, _, h, w = x.shape
        disp = displacement_field(n, h, w, self.alpha, self.sigma, generator)
        return elastic_warp(x, disp, self.fill)

    def __repr__(self) -> str:
        return f"ElasticDistortion(alpha={self.alpha}, sigma={self.sigma})"
