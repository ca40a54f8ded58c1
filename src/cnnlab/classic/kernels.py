"""Named filter kernels of the classic image-processing course (box, Gaussian, Sobel, ...).

A :class:`Kernel` holds its 2-D weights and, when it is separable, the two 1-D factors whose outer
product gives the weights; :func:`cnnlab.classic.filter2d` then runs two 1-D passes instead of one
2-D pass (K + K instead of K * K multiply-adds per pixel).

The derivative kernels (Sobel, Prewitt, Scharr) are written for **correlation**: correlating with
``sobel_x()`` is positive where intensity grows to the right (+x, columns) and ``sobel_y()``
where it grows downwards (+y, rows). Textbooks that write them for convolution show them flipped.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

import numpy as np

from cnnlab.errors import ConfigError


@dataclass(frozen=True, eq=False)
class Kernel:
    """2-D filter weights, plus the (column, row) 1-D factors when the kernel is separable."""

    weights: np.ndarray                                  # (kh, kw), float64
    factors: tuple[np.ndarray, np.ndarray] | None = None  # (kh,), (kw,): weights = outer(col, row)
    name: str = "custom"

    @property
    def shape(self) -> tuple[int, int]:
        return self.weights.shape

    @property
    def separable(self) -> bool:
        return self.factors is not None

    def flipped(self) -> "Kernel":
        """The kernel rotated by 180 degrees: convolving with k is correlating with this."""
        factors = None if self.factors is None else (self.factors[0][::-1], self.factors[1][::-1])
        return Kernel(self.weights[::-1, ::-1].copy(), factors, self.name + "-flipped")

    def __array__(self, dtype=None, copy=None):
        return self.weights if dtype is None else self.weights.astype(dtype)


def _separable(col, row, name: str) -> Kernel:
    col = np.asarray(col, dtype=np.float64)
    row = np.asarray(row, dtype=np.float64)
    w = np.outer(col, row)
    return Kernel(w, (col, row), name)


def _size_pair(size) -> tuple[int, int]:
    h, w = (size, size) if np.isscalar(size) else tuple(size)
    if int(h) != h or int(w) != w or h < 1 or w < 1:
        raise ConfigError(f"kernel size must be a positive integer or a pair of them; got {size!r}")
    return int(h), int(w)


def box(size=3) -> Kernel:
    """Box (mean) filter: every weight 1/(h*w). Any size, even sizes and (h, w) pairs included."""
    h, w = _size_pair(size)
    return _separable(np.full(h, 1.0 / h), np.full(w, 1.0 / w), f"box{h}x{w}")


def gaussian_size(sigma: float) -> int:
    """Default Gaussian kernel side: 2*ceil(3 sigma) + 1 (keeps 99.7% of the mass per axis)."""
    return 2 * math.ceil(3 * sigma) + 1


def gaussian_1d(sigma: float, size: int | None = None) -> np.ndarray:
    """Sampled 1-D Gaussian exp(-x^2 / 2 sigma^2) on integer x centred like scipy, summing to 1."""
    if not sigma > 0:
        raise ConfigError(f"Gaussian sigma must be > 0; got {sigma!r}. Try --sigma 1.")
    size = gaussian_size(sigma) if size is None else int(size)
    if size < 1:
        raise ConfigError(f"Gaussian size must be >= 1; got {size}")
    x = np.arange(size) - size // 2          # scipy's centre for any size, even ones included
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def gaussian(sigma: float = 1.0, size: int | None = None) -> Kernel:
    """Gaussian blur, separable; side 2*ceil(3 sigma)+1 unless ``size`` is given."""
    g = gaussian_1d(sigma, size)
    return _separable(g, g, f"gaussian(sigma={sigma:g})")


# Sobel (1968), Prewitt (1970), Scharr (2000): a smoothing factor across the derivative
# direction times the central difference [-1, 0, 1] along it.
_DIFF = (-1.0, 0.0, 1.0)
_SMOOTH = {"sobel": (1.0, 2.0, 1.0), "prewitt": (1.0, 1.0, 1.0), "scharr": (3.0, 10.0, 3.0)}


def _derivative(op: str, axis: str) -> Kernel:
    s = _SMOOTH[op]
    if axis == "x":
        return _separable(s, _DIFF, f"{op}-x")
    return _separable(_DIFF, s, f"{op}-y")


def sobel_x() -> Kernel:
    """Sobel derivative along x (columns) for correlation: [[-1,0,1],[-2,0,2],[-1,0,1]]."""
    return _derivative("sobel", "x")


def sobel_y() -> Kernel:
    """Sobel derivative along y (rows, downwards) for correlation: transpose of sobel_x."""
    return _derivative("sobel", "y")


def prewitt_x() -> Kernel:
    """Prewitt derivative along x for correlation: [[-1,0,1]] * 3 rows."""
    return _derivative("prewitt", "x")


def prewitt_y() -> Kernel:
    """Prewitt derivative along y for correlation: transpose of prewitt_x."""
    return _derivative("prewitt", "y")


def scharr_x() -> Kernel:
    """Scharr derivative along x for correlation: [[-3,0,3],[-10,0,10],[-3,0,3]]."""
    return _derivative("scharr", "x")


def scharr_y() -> Kernel:
    """Scharr derivative along y for correlation: transpose of scharr_x."""
    return _derivative("scharr", "y")


def laplacian() -> Kernel:
    """4-neighbour Laplacian [[0,1,0],[1,-4,1],[0,1,0]] (not separable)."""
    w = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    return Kernel(w, None, "laplacian")


def sharpen() -> Kernel:
    """The course's sharpening filter: 2 x impulse minus the 3x3 box (boosts detail, sums to 1)."""
    w = -np.full((3, 3), 1.0 / 9.0)
    w[1, 1] += 2.0
    return Kernel(w, None, "sharpen")


# name -> builder; builders that take a size or sigma say so in their signature.
NAMED_KERNELS = {
    "box": box,
    "mean": box,
    "gaussian": gaussian,
    "sobel-x": sobel_x,
    "sobel-y": sobel_y,
    "prewitt-x": prewitt_x,
    "prewitt-y": prewitt_y,
    "scharr-x": scharr_x,
    "scharr-y": scharr_y,
    "laplacian": laplacian,
    "sharpen": sharpen,
}


def get_kernel(name: str, *, size: int | None = None, sigma: float | None = None) -> Kernel:
    """Build a named kernel; ``size`` applies to box and Gaussian, ``sigma`` to Gaussian."""
    key = name.lower().replace("_", "-")
    if key not in NAMED_KERNELS:
        near = difflib.get_close_matches(key, list(NAMED_KERNELS), n=3, cutoff=0.5)
        hint = f" Close matches: {', '.join(near)}." if near else ""
        raise ConfigError(
            f"unknown kernel {name!r}; expected one of {', '.join(NAMED_KERNELS)}.{hint}"
        )
    if key in ("box", "mean"):
        return box(3 if size is None else size)
    if key == "gaussian":
        return gaussian(1.0 if sigma is None else sigma, size)
    return NAMED_KERNELS[key]()


def factorize(weights, rtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (col, row) with outer(col, row) == weights when the kernel has rank 1, else None."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        return None
    if w.shape[0] == 1:
        return np.ones(1), w[0].copy()
    if w.shape[1] == 1:
        return w[:, 0].copy(), np.ones(1)
    scale = np.abs(w).max()
    if scale == 0:
        return None
    u, s, vt = np.linalg.svd(w)
    col, row = u[:, 0] * s[0], vt[0]
    # SVD leaves tiny rounding even for exact rank-1 kernels; accept only a near-exact fit.
    if np.abs(np.outer(col, row) - w).max() > rtol * scale * 10:
        return None
    return col, row


def as_kernel(kernel) -> Kernel:
    """Coerce a Kernel, a name, a 2-D NumPy array or a 2-D tensor to a :class:`Kernel`."""
    if isinstance(kernel, Kernel):
        return kernel
    if isinstance(kernel, str):
        return get_kernel(kernel)
    if hasattr(kernel, "detach"):  # a torch tensor
        kernel = kernel.detach().cpu().double().numpy()
    w = np.asarray(kernel, dtype=np.float64)
    if w.ndim != 2 or w.size == 0:
        raise ConfigError(f"a kernel must be a non-empty 2-D array; got shape {w.shape}")
    return Kernel(w, None, "custom")
