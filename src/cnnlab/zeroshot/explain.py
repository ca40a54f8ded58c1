"""Explanations of a zero-shot model (the course's two, after Ba et al. 2015, Sec. 6):

- word sensitivities: which words of a class's article raise its score most, measured as
  gradient x input (Simonyan et al. 2014; Shrikumar et al. 2016) of the class score, averaged
  over images, with respect to the TF-IDF vector; a bar chart PNG.
- text-to-image retrieval: an article's predicted classifier ranks the test images; the top ones
  as a grid PNG.
"""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.errors import ConfigError


def word_sensitivities(net, text_vec, vocabulary: list[str], feats=None, maps=None,
                       top: int = 10) -> list[tuple[str, float]]:
    """(word, gradient x input) of the mean score of the images given against the class with TF-IDF
    `text_vec` (V,), highest first; only words present in the article (others have input 0)."""
    t = torch.as_tensor(np.asarray(text_vec, np.float32)).reshape(1, -1).requires_grad_(True)
    f = None if feats is None else torch.as_tensor(np.asarray(feats, np.float32))
    m = None if maps is None else torch.as_tensor(np.asarray(maps, np.float32))
    if len(vocabulary) != t.shape[1]:
        raise ConfigError(f"vocabulary has {len(vocabulary)} words, the text vector {t.shape[1]}")
    net.eval()
    score = net(t, f, m).mean()
    (grad,) = torch.autograd.grad(score, t)
    contrib = (grad * t).detach().numpy()[0]
    present = np.flatnonzero(t.detach().numpy()[0])
    order = present[np.argsort(-contrib[present], kind="stable")][:top]
    return [(vocabulary[i], float(contrib[i])) for i in order]


def plot_word_sensitivities(pairs: list[tuple[str, float]], path, title: str = "") -> None:
    """Horizontal bar chart PNG of (word, sensitivity) pairs, largest on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    words, vals = [w for w, _ in pairs][::-1], [v for _, v in pairs][::-1]
    fig, ax = plt.subplots(figsize=(5, 0.35 * max(len(pairs), 3) + 1))
    ax.barh(words, vals, color=["tab:green" if v >= 0 else "tab:red" for v in vals])
    ax.set_xlabel("gradient x TF-IDF (score change)")
    ax.set_title(title or "words that raise the class score")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@torch.no_grad()
def retrieve(net, text_vec, feats=None, maps=None, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores) of the k images scoring highest for the class described by `text_vec`."""
    from cnnlab.zeroshot.models import predict_scores

    s = predict_scores(net, np.asarray(text_vec, np.float32).reshape(1, -1), feats, maps)[:, 0]
    order = np.argsort(-s, kind="stable")[:k]
    return order, s[order]


def plot_retrieval(images: np.ndarray, scores, path, title: str = "", labels=None) -> None:
    """Grid PNG of uint8 images (k, C, S, S) with their scores (and true class names if given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(images)
    cols = min(k, 4)
    rows = max(1, -(-k // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (img, s) in enumerate(zip(images, scores)):
        ax = axes.ravel()[i]
        px = np.asarray(img).transpose(1, 2, 0)
        ax.imshow(px[..., 0] if px.shape[2] == 1 else px, cmap="gray" if px.shape[2] == 1 else None)
        ax.set_title(f"{s:.2f}" + (f"\n{labels[i]}" if labels is not None else ""), fontsize=8)
    fig.suptitle(title or "images nearest to the description")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
