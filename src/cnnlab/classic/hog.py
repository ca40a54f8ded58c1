"""Histograms of Oriented Gradients (Dalal & Triggs, CVPR 2005), in NumPy.

The pipeline of the paper: centred [-1, 0, 1] gradients (no smoothing), for colour images the
channel with the largest gradient magnitude at each pixel, unsigned orientation (0-180 degrees)
in 9 bins voted by gradient magnitude over cells of pixels, cells grouped into overlapping blocks,
each block normalised (L2-Hys: L2, clip at 0.2, L2 again), all blocks concatenated.

Deliberate departures from the paper, shared with ``skimage.feature.hog`` so that the two agree
to rounding error (tests/classic/test_hog.py): each pixel votes into one orientation bin and one
cell (the paper interpolates trilinearly across bins and cells and weights votes with a Gaussian
window over the block); cell histograms are averages (sum / pixels per cell); gradients on the
outermost rows and columns are zero; eps = 1e-5 in the block norms. Defaults follow the paper
(8x8-pixel cells, 2x2-cell blocks, L2-Hys); skimage defaults to 3x3-cell blocks.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import ConfigError, InputShapeError

BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
_EPS = 1e-5           # keeps empty (flat) blocks finite; skimage's value
_HYS_CLIP = 0.2       # Dalal & Triggs 2005, section 6.4: clip L2-normalised block at 0.2


def _pair(v, what: str) -> tuple[int, int]:
    a, b = (v, v) if np.isscalar(v) else tuple(v)
    if int(a) != a or int(b) != b or a < 1 or b < 1:
        raise ConfigError(f"{what} must be a positive integer or a pair of them; got {v!r}")
    return int(a), int(b)


def _as_image(image, channel_axis) -> np.ndarray:
    x = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    x = x.astype(np.float64, copy=False)
    if channel_axis is not None:
        x = np.moveaxis(x, channel_axis, -1)                  # (H, W, C)
    want = 3 if channel_axis is not None else 2
    if x.ndim != want:
        raise InputShapeError(
            f"hog takes a (H, W) grey image, or (H, W, C) with channel_axis=-1; got shape "
            f"{x.shape} with channel_axis={channel_axis}"
        )
    return x


def _centred_gradients(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[-1, 0, 1] differences along rows and columns (axes 0, 1); zero on the outermost pixels."""
    g_row = np.zeros_like(x)
    g_col = np.zeros_like(x)
    g_row[1:-1, :] = x[2:, :] - x[:-2, :]
    g_col[:, 1:-1] = x[:, 2:] - x[:, :-2]
    return g_row, g_col


def hog_gradients(image, channel_axis: int | None = None, transform_sqrt: bool = False):
    """Gradients (g_row, g_col) as HoG uses them: per pixel, the channel with the largest
    magnitude (Dalal & Triggs 2005, section 6.2)."""
    x = _as_image(image, channel_axis)
    if transform_sqrt:          # the paper's "square root gamma compression"
        x = np.sqrt(x)
    if x.ndim == 2:
        return _centred_gradients(x)
    g_row, g_col = _centred_gradients(x)                                # (H, W, C) each
    best = np.hypot(g_row, g_col).argmax(axis=-1)[..., None]           # first channel on ties
    return (np.take_along_axis(g_row, best, -1)[..., 0],
            np.take_along_axis(g_col, best, -1)[..., 0])


def cell_histograms(image, orientations: int = 9, pixels_per_cell=(8, 8), *,
                    channel_axis: int | None = None, transform_sqrt: bool = False) -> np.ndarray:
    """Unsigned orientation histogram of each cell, (n_cells_row, n_cells_col, orientations)
    (Dalal & Triggs 2005, section 6.3). Pixels beyond the last whole cell are ignored."""
    if int(orientations) != orientations or orientations < 1:
        raise ConfigError(f"orientations must be a positive integer; got {orientations!r}")
    c_row, c_col = _pair(pixels_per_cell, "pixels_per_cell")
    g_row, g_col = hog_gradients(image, channel_axis, transform_sqrt)
    h, w = g_row.shape
    n_row, n_col = h // c_row, w // c_col
    if n_row == 0 or n_col == 0:
        raise InputShapeError(
            f"a {h}x{w} image holds no whole {c_row}x{c_col} cell; use smaller pixels_per_cell"
        )
    g_row, g_col = g_row[: n_row * c_row, : n_col * c_col], g_col[: n_row * c_row, : n_col * c_col]
    magnitude = np.hypot(g_col, g_row)
    angle = np.rad2deg(np.arctan2(g_row, g_col)) % 180      # unsigned: 0 <= angle <= 180
    edges = (180.0 / orientations) * np.arange(orientations + 1)
    # Bin b holds edges[b] <= angle < edges[b+1]; an angle that rounds to exactly 180 falls in
    # no bin (skimage drops it too).
    bins = np.searchsorted(edges, angle, side="right") - 1
    valid = (bins >= 0) & (bins < orientations)
    rows = np.arange(n_row * c_row)[:, None] // c_row
    cols = np.arange(n_col * c_col)[None, :] // c_col
    index = (rows * n_col + cols) * orientations + bins
    hist = np.bincount(index[valid], weights=magnitude[valid],
                       minlength=n_row * n_col * orientations)
    return hist.reshape(n_row, n_col, orientations) / (c_row * c_col)


def normalize_block(block: np.ndarray, method: str = "L2-Hys") -> np.ndarray:
    """Normalise blocks over their last three axes (cells, cells, bins); Dalal & Triggs 6.4."""
    axes = (-3, -2, -1)
    if method == "L1":
        return block / (np.abs(block).sum(axis=axes, keepdims=True) + _EPS)
    if method == "L1-sqrt":
        return np.sqrt(block / (np.abs(block).sum(axis=axes, keepdims=True) + _EPS))
    if method in ("L2", "L2-Hys"):
        out = block / np.sqrt((block**2).sum(axis=axes, keepdims=True) + _EPS**2)
        if method == "L2-Hys":
            out = np.minimum(out, _HYS_CLIP)
            out = out / np.sqrt((out**2).sum(axis=axes, keepdims=True) + _EPS**2)
        return out
    raise ConfigError(f"block_norm must be one of {BLOCK_NORMS}; got {method!r}")


def hog(image, orientations: int = 9, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
        block_norm: str = "L2-Hys", *, channel_axis: int | None = None,
        transform_sqrt: bool = False, feature_vector: bool = True) -> np.ndarray:
    """HoG descriptor (Dalal & Triggs 2005): blocks (n_br, n_bc, b_row, b_col, orientations),
    flattened when ``feature_vector``. A grey image is (H, W); give ``channel_axis`` for colour."""
    if block_norm not in BLOCK_NORMS:
        raise ConfigError(f"block_norm must be one of {BLOCK_NORMS}; got {block_norm!r}")
    b_row, b_col = _pair(cells_per_block, "cells_per_block")
    hist = cell_histograms(image, orientations, pixels_per_cell,
                           channel_axis=channel_axis, transform_sqrt=transform_sqrt)
    n_row, n_col = hist.shape[:2]
    nb_row, nb_col = n_row - b_row + 1, n_col - b_col + 1
    if nb_row < 1 or nb_col < 1:
        c_row, c_col = _pair(pixels_per_cell, "pixels_per_cell")
        raise InputShapeError(
            f"HoG with {b_row}x{b_col}-cell blocks of {c_row}x{c_col} pixels needs at least "
            f"{b_row * c_row}x{b_col * c_col} pixels; got {n_row * c_row}x{n_col * c_col} in "
            "whole cells. Use smaller pixels_per_cell or cells_per_block."
        )
    blocks = np.empty((nb_row, nb_col, b_row, b_col, hist.shape[2]))   # overlapping, stride 1
    for i in range(b_row):
        for j in range(b_col):
            blocks[:, :, i, j] = hist[i:i + nb_row, j:j + nb_col]
    blocks = normalize_block(blocks, block_norm)
    return blocks.ravel() if feature_vector else blocks


def hog_image(hist: np.ndarray, pixels_per_cell=(8, 8), shape=None) -> np.ndarray:
    """Picture of cell histograms: in each cell, one line per bin through the cell centre along
    the edge direction (perpendicular to the bin's gradient angle), brightness = bin value."""
    c_row, c_col = _pair(pixels_per_cell, "pixels_per_cell")
    n_row, n_col, n_bins = hist.shape
    shape = (n_row * c_row, n_col * c_col) if shape is None else tuple(shape)
    out = np.zeros(shape)
    radius = max(1, min(c_row, c_col) // 2 - 1)
    centre_r = (np.arange(n_row) * c_row + c_row // 2)[:, None]
    centre_c = (np.arange(n_col) * c_col + c_col // 2)[None, :]
    t = np.linspace(-radius, radius, 4 * radius + 1)
    for b in range(n_bins):
        theta = np.pi * (b + 0.5) / n_bins                  # bin-centre gradient angle
        # Edge direction = gradient + 90 degrees; rows grow downwards, so (d_row, d_col) =
        # (cos theta, -sin theta) is the gradient (sin theta, cos theta) turned by 90 degrees.
        offsets = np.unique(np.rint(np.stack([t * np.cos(theta), -t * np.sin(theta)], 1)), axis=0)
        for dr, dc in offsets.astype(int):
            rr, cc = centre_r + dr, centre_c + dc
            ok = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
            rr, cc = np.broadcast_arrays(rr, cc)
            out[rr[ok], cc[ok]] += hist[..., b][ok]
    return out
