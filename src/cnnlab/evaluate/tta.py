"""Test-time augmentation: average the softmax over flipped and cropped views of each image.

- ``flip``: the image and its mirror image (2 views).
- ``tencrop``: Krizhevsky et al. 2012 (AlexNet, section 4.1) predict from the four corner and the
  centre 224 x 224 patches of a 256 x 256 image, plus their horizontal reflections, and average the
  ten softmax outputs. A crop needs an image larger than the crop, so the rule here is the same
  ratio at any input size S: the preprocessed S x S batch is resized (bilinear) to
  R = round(S * 256 / 224) and the ten S x S crops are taken from it (S = 224: R = 256; S = 32:
  R = 37). Resizing the normalised batch equals normalising the resized image, because bilinear
  weights sum to one and normalisation is affine per channel.
- ``flip-translate``: airbench's test-time views (Jordan 2024): the image, and the image shifted
  one pixel up-left and one pixel down-right (reflect-padded), each also mirrored (6 views).
  Averaged uniformly; airbench weights the unshifted pair 1/2 and each shifted pair 1/4.

Views are averaged as probabilities, not logits, as AlexNet averages its predictions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError, InputShapeError

TTA_MODES = ("flip", "tencrop", "flip-translate")


def check_mode(mode: str | None) -> str | None:
    """None/"none" -> None; a known mode passes; anything else is a ConfigError."""
    if mode in (None, "none"):
        return None
    if mode not in TTA_MODES:
        raise ConfigError(f"test-time augmentation must be one of {TTA_MODES} (or none); "
                          f"got {mode!r}")
    return mode


def tencrop_size(size: int) -> int:
    """The side the batch is resized to before ten-cropping S x S (AlexNet's 256 for 224)."""
    return round(size * 256 / 224)


def tta_views(x: torch.Tensor, mode: str | None) -> list[torch.Tensor]:
    """The views of a preprocessed batch (N, C, S, S) that `mode` averages over, each that shape.

    The crops and flips themselves come from :mod:`cnnlab.augment.tta` (one home per concept);
    this module adds the resize rule that lets ten-crop work at the model's own input size.
    """
    mode = check_mode(mode)
    if mode is None:
        return [x]
    from cnnlab.augment.tta import flip_views, ten_crop

    if x.dim() != 4:
        raise InputShapeError(f"test-time augmentation expects a batch (N, C, H, W); got "
                              f"{tuple(x.shape)}")
    if mode == "flip":
        views = flip_views(x)                                               # (N, 2, C, S, S)
    elif mode == "flip-translate":
        h, w = x.shape[-2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")                     # (N, C, S+2, S+2)
        shifted = [x, padded[..., 2:, 2:], padded[..., :h, :w]]             # 0, up-left, down-right
        views = torch.cat([flip_views(v) for v in shifted], dim=1)          # (N, 6, C, S, S)
    else:
        s = x.shape[-1]
        r = tencrop_size(s)
        big = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)  # (N, C, R, R)
        views = ten_crop(big, s)                                            # (N, 10, C, S, S)
    return list(views.unbind(dim=1))


@torch.no_grad()
def tta_probs(model: nn.Module, x: torch.Tensor, mode: str | None = None) -> torch.Tensor:
    """Softmax (N, K) of `model`, averaged over the views of `mode` (None: a single view)."""
    views = tta_views(x, mode)
    total = None
    for v in views:
        p = model(v.contiguous()).float().softmax(dim=1)
        total = p if total is None else total + p
    return total / len(views)


class TTAModel(nn.Module):
    """`model` behind test-time augmentation: returns the log of the view-averaged softmax, so
    top-k of the output is the TTA prediction and its cross-entropy is the TTA log-loss."""

    def __init__(self, model: nn.Module, mode: str | None):
        super().__init__()
        self.model, self.mode = model, check_mode(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tta_probs(self.model, x, self.mode).clamp_min(1e-12).log()
