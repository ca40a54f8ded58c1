"""GIST scene descriptor (Oliva & Torralba, IJCV 2001), as taught in the course: a bank of Gabor
filters at 4 scales x 8 orientations, the magnitude of each response averaged over a 4x4 grid of
the image: 4 * 8 * 16 = 512 numbers for a grey image (3 x 512 for colour, channel by channel).

The filters are defined in the frequency domain, where a Gabor filter is a Gaussian bump
centred on its tuning frequency (Daugman 1985). Frequencies are in cycles per pixel, so the same
bank applies to any image size. Each bump sits on one side of the origin only, so the filtered
image is complex (a quadrature pair) and its magnitude is the local "Gabor energy", insensitive
to the phase of the stripes.

Choices where the course and LMgist (Torralba's MATLAB code) leave room:

* scales one octave apart, from 0.25 cycles/pixel (4-pixel period) down;
* one-octave radial bandwidth (sigma = 0.283 f) and an angular half-width of half the orientation
  step, so neighbouring filters cross at half amplitude;
* prefilter: zero mean and unit variance per channel (LMgist whitens and normalises local
  contrast instead); this makes the descriptor invariant to brightness and contrast;
* the image is reflected by a quarter of its side before the DFT, so the DFT's wrap-around joins
  mirrored content instead of the opposite edge.
"""

from __future__ import annotations

import math

import numpy as np

from cnnlab.errors import ConfigError, InputShapeError

F_MAX = 0.25                                           # cycles/pixel of the finest scale
RADIAL_SIGMA = 1.0 / (3.0 * math.sqrt(2.0 * math.log(2.0)))   # one-octave FWHM: sigma = 0.283 f


def scale_frequencies(n_scales: int = 4, f_max: float = F_MAX) -> np.ndarray:
    """Tuning frequency of each scale, one octave apart: f_max, f_max/2, ..."""
    return f_max / 2.0 ** np.arange(n_scales)


def orientation_angles(n_orientations: int = 8) -> np.ndarray:
    """Direction of each filter's wave vector from the +x axis (radians, y down): k*pi/n.
    Angle 0 answers to vertical stripes (intensity varying along x)."""
    return np.pi * np.arange(n_orientations) / n_orientations


def _bandwidths(frequency: float, n_orientations: int) -> tuple[float, float]:
    # Half amplitude at +-half an orientation step: sigma_t = f tan(pi / 2n) / sqrt(2 ln 2).
    tangential = frequency * math.tan(math.pi / (2 * n_orientations)) / math.sqrt(2 * math.log(2))
    return RADIAL_SIGMA * frequency, tangential


def gabor_transfer(shape, frequency: float, theta: float, n_orientations: int = 8) -> np.ndarray:
    """Frequency response of one Gabor filter on the DFT grid of ``shape`` (np.fft order)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    u = fx * math.cos(theta) + fy * math.sin(theta)      # along the wave vector
    v = -fx * math.sin(theta) + fy * math.cos(theta)     # across it
    s_r, s_t = _bandwidths(frequency, n_orientations)
    return np.exp(-((u - frequency) ** 2) / (2 * s_r**2) - v**2 / (2 * s_t**2))


def gabor_kernel(frequency: float, theta: float, size: int, n_orientations: int = 8) -> np.ndarray:
    """The same filter in space (closed form): a complex sinusoid under a Gaussian envelope,
    sampled on a size x size grid centred at size // 2. Used to check and to draw the bank."""
    s_r, s_t = _bandwidths(frequency, n_orientations)
    y, x = np.mgrid[:size, :size] - size // 2
    xr = x * math.cos(theta) + y * math.sin(theta)
    yr = -x * math.sin(theta) + y * math.cos(theta)
    envelope = 2 * math.pi * s_r * s_t * np.exp(-2 * math.pi**2 * (s_r**2 * xr**2 + s_t**2 * yr**2))
    return envelope * np.exp(2j * math.pi * frequency * xr)


def gabor_bank(shape, n_scales: int = 4, n_orientations: int = 8) -> np.ndarray:
    """All transfer functions, (n_scales * n_orientations, H, W), scale-major."""
    return np.stack([
        gabor_transfer(shape, f, t, n_orientations)
        for f in scale_frequencies(n_scales) for t in orientation_angles(n_orientations)
    ])


def _grid_edges(n: int, grid: int) -> np.ndarray:
    return np.rint(np.linspace(0, n, grid + 1)).astype(int)


def grid_means(maps: np.ndarray, grid: int) -> np.ndarray:
    """Average the last two axes over a grid x grid partition: (..., H, W) -> (..., grid, grid)."""
    h, w = maps.shape[-2:]
    re, ce = _grid_edges(h, grid), _grid_edges(w, grid)
    sums = np.add.reduceat(np.add.reduceat(maps, re[:-1], axis=-2), ce[:-1], axis=-1)
    counts = np.diff(re)[:, None] * np.diff(ce)[None, :]
    return sums / counts


def _prepare(images: np.ndarray, grid: int, prefilter: bool):
    x = np.asarray(images, dtype=np.float64)
    h, w = x.shape[-2:]
    if h < grid or w < grid:
        raise InputShapeError(f"GIST with a {grid}x{grid} grid needs at least {grid}x{grid} "
                              f"pixels; got {h}x{w}")
    if prefilter:
        x = x - x.mean(axis=(-2, -1), keepdims=True)
        std = x.std(axis=(-2, -1), keepdims=True)
        x = x / np.where(std > 0, std, 1.0)
    pad = (max(1, h // 4), max(1, w // 4))
    width = [(0, 0)] * (x.ndim - 2) + [(pad[0], pad[0]), (pad[1], pad[1])]
    return np.pad(x, width, mode="symmetric"), pad


def gabor_responses(image, n_scales: int = 4, n_orientations: int = 8,
                    prefilter: bool = True) -> np.ndarray:
    """|image * Gabor| for every filter of the bank, (n_scales * n_orientations, H, W), grey."""
    x = np.asarray(image)
    if x.ndim != 2:
        raise InputShapeError(f"gabor_responses takes a (H, W) grey image; got shape {x.shape}")
    xp, (ph, pw) = _prepare(x, 1, prefilter)
    bank = gabor_bank(xp.shape, n_scales, n_orientations)
    resp = np.abs(np.fft.ifft2(np.fft.fft2(xp)[None] * bank))
    return resp[:, ph:ph + x.shape[0], pw:pw + x.shape[1]]


def gist(images, n_scales: int = 4, n_orientations: int = 8, grid: int = 4, *,
         prefilter: bool = True, batch_size: int = 128) -> np.ndarray:
    """GIST descriptor (Oliva & Torralba 2001) of one image or a batch.

    Accepts (H, W), (C, H, W) or (N, C, H, W) (channels first, like the data loaders) and
    returns (D,) for one image or (N, D) for a batch, D = C * n_scales * n_orientations * grid^2,
    ordered channel, scale, orientation, grid row, grid column.
    """
    x = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if x.ndim not in (2, 3, 4):
        raise InputShapeError(f"gist takes (H, W), (C, H, W) or (N, C, H, W); got {x.shape}")
    if grid < 1 or n_scales < 1 or n_orientations < 1:
        raise ConfigError("grid, n_scales and n_orientations must all be >= 1")
    single = x.ndim < 4
    x4 = x.reshape((1,) * (4 - x.ndim) + x.shape)                 # (N, C, H, W)
    n, c, h, w = x4.shape
    out = np.empty((n, c, n_scales * n_orientations, grid, grid))
    bank = None
    for start in range(0, n, batch_size):
        xp, (ph, pw) = _prepare(x4[start:start + batch_size], grid, prefilter)
        if bank is None:
            bank = gabor_bank(xp.shape[-2:], n_scales, n_orientations)
        spec = np.fft.fft2(xp)                                    # (n, C, Hp, Wp)
        for i, g in enumerate(bank):
            resp = np.abs(np.fft.ifft2(spec * g))[..., ph:ph + h, pw:pw + w]
            out[start:start + batch_size, :, i] = grid_means(resp, grid)
    out = out.reshape(n, -1)
    return out[0] if single else out
