"""Test-time augmentation: ten-crop (Krizhevsky et al. 2012) and horizontal-flip views.

AlexNet averaged its softmax over ten 224 x 224 patches of each 256 x 256 test image: the four
corners and the centre, and their mirror images. :func:`ten_crop` makes those views as a
(N, 10, C, s, s) tensor in that order (top-left, top-right, bottom-left, bottom-right, centre,
then the same five flipped); :func:`predict_views` runs a model on every view and averages.
"""

from __future__ import annotations

from cnnlab.augment.compose import check_batch
from cnnlab.errors import InputShapeError

VIEW_NAMES = ("top-left", "top-right", "bottom-left", "bottom-right", "centre")


def five_crop(x, size):
    """(N, 5, C, s, s): corner crops then the centre crop, deterministic."""
    import torch

    x = check_batch(x, "five_crop")
    h, w = x.shape[-2:]
    sh, sw = (size, size) if isinstance(size, int) else size
    if sh > h or sw > w:
        raise InputShapeError(f"ten/five-crop of {sh}x{sw} needs images at least that big; got "
                              f"{h}x{w}. Resize first (AlexNet: 256 then 224 crops).")
    top, left = (h - sh) // 2, (w - sw) // 2
    views = [x[..., :sh, :sw], x[..., :sh, w - sw:], x[..., h - sh:, :sw],
             x[..., h - sh:, w - sw:], x[..., top:top + sh, left:left + sw]]
    return torch.stack(views, dim=1)


def ten_crop(x, size=224):
    """(N, 10, C, s, s): the five crops of each image, then the five crops of its mirror image."""
    import torch

    five = five_crop(x, size)
    return torch.cat([five, five_crop(x.flip(-1), size)], dim=1)


def flip_views(x):
    """(N, 2, C, H, W): each image and its left-right mirror."""
    import torch

    x = check_batch(x, "flip_views")
    return torch.stack([x, x.flip(-1)], dim=1)


def predict_views(model, views, transform=None):
    """Mean softmax over views (N, V, C, H, W) -> (N, classes); `transform` maps each flat batch."""
    import torch

    n, v = views.shape[:2]
    flat = views.reshape(n * v, *views.shape[2:])
    if transform is not None:
        flat = transform(flat)
    with torch.no_grad():
        probs = torch.softmax(model(flat), dim=-1)
    return probs.reshape(n, v, -1).mean(dim=1)
