"""Pictures of the maps: heat-map overlays, tile grids and labelled panels, written as PNGs.

Figures use matplotlib's object API on an Agg canvas (no pyplot, no global backend switch), so
they work headless and from threads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from cnnlab.errors import ConfigError, InputShapeError


def as_uint8(image) -> np.ndarray:
    """Any image as uint8 (H, W, 3): grey is repeated, floats in [0, 1] are scaled by 255."""
    a = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3):
        raise InputShapeError(f"expected an image (H, W), (H, W, 1) or (H, W, 3); got {a.shape}")
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a


def colorize(heat: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """A (H, W) map in [0, 1] through a matplotlib colormap: uint8 (H, W, 3)."""
    import matplotlib

    try:
        cm = matplotlib.colormaps[cmap]
    except KeyError:
        raise ConfigError(f"unknown colormap {cmap!r}; try jet, viridis, inferno or gray") from None
    rgba = cm(np.clip(np.asarray(heat, np.float32), 0, 1))
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def resize_map(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float (h, w) map to (H, W)."""
    from PIL import Image

    heat = np.asarray(heat, np.float32)
    if heat.shape == tuple(size):
        return heat
    img = Image.fromarray(heat, mode="F").resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(img, np.float32)


def overlay(image, heat: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """The image with a coloured heat-map blended on top: uint8 (H, W, 3). `heat` in [0, 1] is
    resized to the image; `alpha` is the weight of the colours."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1]; got {alpha}")
    base = as_uint8(image).astype(np.float32)
    colours = colorize(resize_map(heat, base.shape[:2]), cmap).astype(np.float32)
    return ((1 - alpha) * base + alpha * colours).round().clip(0, 255).astype(np.uint8)


def tile_grid(tiles, ncols: int | None = None, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tiles (N, h, w[, C]) laid out row-major with `pad` pixels between them; float tiles are
    expected in [0, 1]. `ncols` defaults to ceil(sqrt(N)). Returns (H, W, C), C as the tiles."""
    t = np.asarray(tiles)
    if t.ndim == 3:
        t = t[..., None]
    if t.ndim != 4 or len(t) == 0:
        raise InputShapeError(f"expected tiles (N, h, w) or (N, h, w, C) with N >= 1; "
                              f"got {t.shape}")
    n, h, w, c = t.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    fill = 255 if t.dtype == np.uint8 and pad_value == 1.0 else pad_value
    grid = np.full((nrows * h + (nrows - 1) * pad, ncols * w + (ncols - 1) * pad, c), fill,
                   dtype=t.dtype)
    for i in range(n):
        r, q = divmod(i, ncols)
        grid[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = t[i]
    return grid


def save_png(path, image, scale: int = 1) -> Path:
    """Write an image (see :func:`as_uint8`) as PNG, optionally enlarged `scale` times with
    nearest-neighbour so small inputs stay crisp; creates parent folders."""
    from PIL import Image

    a = as_uint8(image)
    if scale > 1:
        a = np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, "RGB").save(path, format="PNG")
    return path


def save_panels(path, panels, titles=None, suptitle: str | None = None, ncols: int | None = None,
                cmap: str = "jet") -> Path:
    """A row (or grid) of labelled panels: each an image (H, W[, C]) or a float (H, W) map, which
    is drawn with `cmap` and a colour bar. Written with matplotlib's Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = list(panels)
    titles = list(titles or [""] * len(panels))
    ncols = ncols or len(panels)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(3 * ncols, 3 * nrows + (0.4 if suptitle else 0)), dpi=100)
    FigureCanvasAgg(fig)
    for i, (p, title) in enumerate(zip(panels, titles)):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        a = np.asarray(p)
        if a.ndim == 2 and a.dtype != np.uint8:
            im = ax.imshow(a, cmap=cmap, vmin=0, vmax=1)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        else:
            ax.imshow(as_uint8(a), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(os.fspath(path), format="png")
    return path
