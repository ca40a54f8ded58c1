"""Pictures of filter outputs: mapping responses to displayable 8-bit images, and the gallery
figure of one image under every named kernel (``cnnlab filter IMAGE --all``)."""

from __future__ import annotations

import numpy as np

from cnnlab.classic.filters import filter2d, gradient_magnitude
from cnnlab.classic.kernels import Kernel, get_kernel

# The gallery's panels, in reading order; "gradient" is the Sobel gradient magnitude.
GALLERY = ("box", "gaussian", "sobel-x", "sobel-y", "prewitt-x", "prewitt-y",
           "scharr-x", "scharr-y", "laplacian", "sharpen", "gradient")


def is_response(kernel: Kernel) -> bool:
    """True for kernels whose weights sum to 0 (derivatives, Laplacian): their output is a signed
    response, not an image with the input's brightness."""
    return bool(abs(kernel.weights.sum()) < 1e-9 * max(1.0, np.abs(kernel.weights).sum()))


def to_display(out: np.ndarray, response: bool) -> np.ndarray:
    """8-bit picture of a filter output on a 0..255 input: responses as |value| stretched so the
    strongest is white; images (blur, sharpen) clipped to 0..255."""
    out = np.asarray(out, dtype=np.float64)
    if response:
        mag = np.abs(out)
        peak = mag.max()
        out = mag * (255.0 / peak) if peak > 0 else mag
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def gallery(image: np.ndarray, *, size: int = 3, sigma: float = 1.0,
            border: str = "reflect") -> dict[str, np.ndarray]:
    """Each GALLERY kernel applied to a grey (H, W) image: name -> 8-bit display image."""
    panels = {}
    for name in GALLERY:
        if name == "gradient":
            panels[name] = to_display(gradient_magnitude(image, "sobel", border), True)
            continue
        k = get_kernel(name, size=size if name == "box" else None,
                       sigma=sigma if name == "gaussian" else None)
        panels[name] = to_display(filter2d(image, k, "correlate", border), is_response(k))
    return panels


def save_gallery(image: np.ndarray, path, *, size: int = 3, sigma: float = 1.0,
                 border: str = "reflect", title: str = "") -> list[str]:
    """Write a grid figure of the image and its GALLERY panels to ``path`` (PNG, PDF, ...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"input": np.clip(image, 0, 255).astype(np.uint8)}
    panels.update(gallery(image, size=size, sigma=sigma, border=border))
    labels = {"box": f"box {size}x{size}", "gaussian": f"gaussian sigma={sigma:g}",
              "gradient": "|gradient| (Sobel)"}
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows + 0.4))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, img) in zip(axes.ravel(), panels.items()):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(labels.get(name, name), fontsize=10)
    fig.suptitle(title or f"correlation, border={border}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return list(panels)
