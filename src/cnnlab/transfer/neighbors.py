"""Nearest training images of a query in a CNN's feature space, drawn as an image grid.

Krizhevsky et al. 2012 (Fig. 4, right) showed the training images whose last-hidden-layer
vectors lie closest to a test image's: they share its class while differing a lot in pixels,
which is what makes the features useful. Here any layer of :mod:`cnnlab.transfer.features` works;
cosine distance is the default (the scale of activations varies between images), Euclidean the
paper's.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import ConfigError, DataError

METRICS = ("cosine", "euclidean")
MIN_TILE = 96        # tiles are enlarged to at least this many pixels so digits stay legible
CAPTION_H = 14       # pixels under each tile for "class d=0.123"


def nearest(train: np.ndarray, queries: np.ndarray, k: int = 8,
            metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """Indices (Q, k) into `train` and distances (Q, k), nearest first (Krizhevsky et al. 2012)."""
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {METRICS}; got {metric!r}")
    train, queries = np.asarray(train, np.float64), np.asarray(queries, np.float64)
    if train.ndim != 2 or queries.ndim != 2 or train.shape[1] != queries.shape[1]:
        raise DataError(f"features must be (N, D) and (Q, D) with the same D; got "
                        f"{train.shape} and {queries.shape}")
    if not 1 <= k <= len(train):
        raise ConfigError(f"k must be between 1 and the {len(train)} training images; got {k}")
    if metric == "cosine":
        a = train / np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
        b = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        d = 1.0 - b @ a.T                                          # (Q, N)
    else:
        # |q - t|^2 = |q|^2 - 2 q.t + |t|^2, clipped at 0 against rounding
        d2 = (queries**2).sum(1)[:, None] - 2 * queries @ train.T + (train**2).sum(1)[None]
        d = np.sqrt(np.maximum(d2, 0.0))
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


def to_uint8_hwc(image) -> np.ndarray:
    """(C, H, W) float in [0, 1] or uint8, or (H, W[, C]) -> uint8 (H, W, 3) for drawing."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


def neighbor_grid(rows: list[tuple[np.ndarray, list[np.ndarray], list[str]]],
                  query_captions: list[str] | None = None):
    """A PIL image: per row the query (framed in blue) then its neighbours, each captioned."""
    from PIL import Image, ImageDraw

    if not rows:
        raise DataError("no query to draw")
    side = max(to_uint8_hwc(rows[0][0]).shape[:2])
    tile = max(side, MIN_TILE)
    pad = 4
    cols = 1 + max(len(r[1]) for r in rows)
    cell_w, cell_h = tile + pad, tile + CAPTION_H + pad
    canvas = Image.new("RGB", (cols * cell_w + pad, len(rows) * cell_h + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (query, neighbours, captions) in enumerate(rows):
        tiles = [query] + list(neighbours)
        texts = [(query_captions or [""] * len(rows))[r] or "query"] + list(captions)
        for c, (img, text) in enumerate(zip(tiles, texts)):
            x0, y0 = pad + c * cell_w, pad + r * cell_h
            im = Image.fromarray(to_uint8_hwc(img)).resize((tile, tile), Image.NEAREST)
            canvas.paste(im, (x0, y0))
            if c == 0:
                draw.rectangle([x0 - 2, y0 - 2, x0 + tile + 1, y0 + tile + 1], outline=(0, 0, 255),
                               width=2)
            draw.text((x0, y0 + tile + 1), text[: max(4, tile // 6)], fill=(0, 0, 0))
    return canvas


def find_neighbors(model, train_images, train_labels, classes, query_images, *, k: int = 8,
                   layer: str = "pre_logits", metric: str = "cosine", mean=None, std=None,
                   batch_size: int = 64, pool: str = "avg") -> list[dict]:
    """For each query (float (Q, C, S, S) in [0, 1]), its k nearest training images at `layer`."""
    from cnnlab.transfer.features import extract_features

    opts = dict(batch_size=batch_size, pool=pool, mean=mean, std=std)
    f_train = extract_features(model, train_images, layer, **opts)
    f_query = extract_features(model, query_images, layer, **opts)
    idx, dist = nearest(f_train, f_query, k, metric)
    labels = np.asarray(train_labels)
    return [{"neighbors": [{"index": int(i), "class": str(classes[labels[i]]),
                            "distance": float(d)} for i, d in zip(row_i, row_d)]}
            for row_i, row_d in zip(idx, dist)]
