"""The space the classifier sees: penultimate-layer features, embedded in 2-D with t-SNE
(van der Maaten & Hinton 2008), and nearest neighbours in feature space (Krizhevsky et al. 2012,
Fig. 4, which compares images by the Euclidean distance of their last hidden layer).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.visualize.hooks import eval_mode, relu_rule

# t-SNE's cost grows with the dimension; reducing to 50 with PCA first is van der Maaten &
# Hinton's own recipe (sec. 5) and keeps penultimate layers of 4,096 (VGG) fast.
PCA_DIMS = 50


def penultimate_features(model: nn.Module, images: torch.Tensor,
                         batch_size: int = 256) -> np.ndarray:
    """(N, D) pre-logit features, ``forward_head(forward_features(x), pre_logits=True)``."""
    if images.dim() != 4:
        raise InputShapeError(f"expected images (N, C, H, W); got shape {tuple(images.shape)}")
    out = []
    with eval_mode(model), relu_rule(model), torch.no_grad():
        for i in range(0, len(images), batch_size):
            f = model.forward_features(images[i:i + batch_size])
            f = model.forward_head(f, pre_logits=True)
            out.append(f.flatten(1).float().cpu())
    return torch.cat(out).numpy()


def tsne(features: np.ndarray, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """(N, 2) t-SNE embedding of (N, D) features (van der Maaten & Hinton 2008), after PCA to
    50 dimensions; the perplexity is lowered to N - 1 for small sets, as t-SNE requires."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    f = np.asarray(features, np.float32)
    if f.ndim != 2 or len(f) < 3:
        raise InputShapeError(f"t-SNE needs features (N, D) with N >= 3; got shape {f.shape}")
    if perplexity <= 0:
        raise ConfigError(f"perplexity must be > 0; got {perplexity}")
    if f.shape[1] > PCA_DIMS and len(f) > PCA_DIMS:
        f = PCA(PCA_DIMS, random_state=seed).fit_transform(f)
    perplexity = min(float(perplexity), len(f) - 1.0)
    emb = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(f)
    return emb.astype(np.float32)


def nearest_neighbours(features: np.ndarray, queries, k: int = 5) -> np.ndarray:
    """(Q, k) indices of the `k` nearest other rows (Euclidean) to each query row
    (Krizhevsky et al. 2012, Fig. 4)."""
    f = np.asarray(features, np.float64)
    q = np.atleast_1d(np.asarray(queries, int))
    if not 1 <= k < len(f):
        raise ConfigError(f"k must be in 1..{len(f) - 1} (the number of other images); got {k}")
    d = ((f[q, None, :] - f[None, :, :]) ** 2).sum(-1)   # (Q, N)
    d[np.arange(len(q)), q] = np.inf                      # never a query's own neighbour
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def save_neighbour_grid(path, images, queries, neighbours, scale: int = 2) -> Path:
    """One row per query: the query image, a gap, then its neighbours (Krizhevsky et al. 2012,
    Fig. 4). `images` are (N, H, W, C) uint8 or floats in [0, 1]; `neighbours` is (Q, k)."""
    from cnnlab.visualize.overlay import as_uint8, save_png, tile_grid

    nbrs = np.atleast_2d(np.asarray(neighbours, int))
    q = np.atleast_1d(np.asarray(queries, int))
    if len(q) != len(nbrs):
        raise ConfigError(f"one row of neighbours per query: {len(q)} queries, {len(nbrs)} rows")
    blank = np.full_like(as_uint8(images[0]), 255)
    rows = [[as_uint8(images[i]), blank] + [as_uint8(images[j]) for j in row]
            for i, row in zip(q, nbrs)]
    tiles = np.stack([t for row in rows for t in row])      # (Q * (k + 2), H, W, 3)
    return save_png(path, tile_grid(tiles, ncols=nbrs.shape[1] + 2, pad=1), scale=scale)


def save_tsne(path, points: np.ndarray, labels, classes=None, title: str = "") -> Path:
    """Scatter plot of a 2-D embedding, one colour per class, with a legend; PNG via Agg."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = np.asarray(labels)
    fig = Figure(figsize=(6, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, lab in enumerate(np.unique(labels)):
        sel = labels == lab
        name = classes[int(lab)] if classes is not None else str(lab)
        ax.scatter(points[sel, 0], points[sel, 1], s=8, color=f"C{i % 10}", label=name)
    ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.set_title(title or "t-SNE of penultimate features", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(os.fspath(path), format="png")
    return path
