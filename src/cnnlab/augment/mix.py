"""Label-mixing augmentations: mixup (Zhang et al. 2018) and cutmix (Yun et al. 2019).

Both take images and integer labels and return a :class:`MixedBatch` (x, y_a, y_b, lam): each
image i is mixed with image perm[i] of the same batch, y_b = y[perm], and lam (N,) is the weight
of y_a. Train with :func:`mixed_cross_entropy` (or soft targets from
:meth:`MixedBatch.soft_targets`): lam * CE(y_a) + (1 - lam) * CE(y_b). Every sample draws its
own lam (the papers draw one per batch; per sample gives the same expected mix, less noise).
"""

from __future__ import annotations

from typing import NamedTuple

from cnnlab.augment.compose import check_batch, per_sample
from cnnlab.augment.erase import box_mask
from cnnlab.errors import ConfigError, InputShapeError


class MixedBatch(NamedTuple):
    x: "object"        # (N, C, H, W) mixed images, the input dtype
    y_a: "object"      # (N,) labels of the images mixed into
    y_b: "object"      # (N,) labels of the partner images
    lam: "object"      # (N,) float32 weight of y_a

    def soft_targets(self, num_classes: int):
        """(N, num_classes) float32 targets lam * onehot(y_a) + (1 - lam) * onehot(y_b)."""
        import torch.nn.functional as F

        a = F.one_hot(self.y_a, num_classes).float()
        b = F.one_hot(self.y_b, num_classes).float()
        lam = self.lam[:, None]
        return lam * a + (1 - lam) * b


def mixed_cross_entropy(logits, mixed: MixedBatch, label_smoothing: float = 0.0):
    """Mean of lam * CE(logits, y_a) + (1 - lam) * CE(logits, y_b) (Zhang et al. 2018, Eq. 1)."""
    import torch.nn.functional as F

    la = F.cross_entropy(logits, mixed.y_a, reduction="none", label_smoothing=label_smoothing)
    lb = F.cross_entropy(logits, mixed.y_b, reduction="none", label_smoothing=label_smoothing)
    return (mixed.lam * la + (1 - mixed.lam) * lb).mean()


def sample_beta(n: int, alpha: float, generator=None):
    """(n,) Beta(alpha, alpha) draws seeded from `generator` (torch has no seedable Beta)."""
    import numpy as np
    import torch

    seed = int(torch.randint(2**62, (1,), generator=generator))
    lam = np.random.default_rng(seed).beta(alpha, alpha, size=n)
    return torch.from_numpy(lam).float()


def _check(x, y, name: str, alpha: float):
    import torch

    check_batch(x, name)
    y = torch.as_tensor(y)
    if y.shape != (x.shape[0],):
        raise InputShapeError(f"{name} needs one integer label per image: shape ({x.shape[0]},); "
                              f"got {tuple(y.shape)}")
    if alpha <= 0:
        raise ConfigError(f"{name} alpha must be > 0; got {alpha}")
    return y.long()


class Mixup:
    """Convex combinations of image pairs, lam ~ Beta(alpha, alpha) (Zhang et al. 2018).

    alpha 1.0 (lam uniform) is the paper's CIFAR-10 setting; it used 0.2 on ImageNet.
    uint8 inputs are rounded after mixing; pass floats for the exact combination.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = float(alpha)

    def __call__(self, x, y, generator=None) -> MixedBatch:
        import torch

        y = _check(x, y, "Mixup", self.alpha)
        n = x.shape[0]
        lam = sample_beta(n, self.alpha, generator)
        perm = torch.randperm(n, generator=generator)
        lx = per_sample(lam, x)
        mixed = lx * x.float() + (1 - lx) * x[perm].float()
        if x.dtype == torch.uint8:
            mixed = mixed.round_().clamp_(0, 255).to(torch.uint8)
        else:
            mixed = mixed.to(x.dtype)
        return MixedBatch(mixed, y, y[perm], lam)

    def __repr__(self) -> str:
        return f"Mixup(alpha={self.alpha})"


class CutMix:
    """Paste a box from a partner image, box area (1 - lam) of the image (Yun et al. 2019).

    lam ~ Beta(alpha, alpha) with alpha 1.0 as in the paper; the box is clipped at the border and
    lam is recomputed from the pasted area, so it is exactly the fraction of own pixels kept.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = float(alpha)

    def __call__(self, x, y, generator=None) -> MixedBatch:
        import torch

        y = _check(x, y, "CutMix", self.alpha)
        n, _, h, w = x.shape
        lam = sample_beta(n, self.alpha, generator)
        perm = torch.randperm(n, generator=generator)
        cut = torch.sqrt(1 - lam)                               # side ratio (Yun et al., Eq. 2)
        bh, bw = (h * cut).floor().long(), (w * cut).floor().long()
        cy = torch.randint(h, (n,), generator=generator)
        cx = torch.randint(w, (n,), generator=generator)
        y0, y1 = (cy - bh // 2).clamp(0, h), (cy - bh // 2 + bh).clamp(0, h)
        x0, x1 = (cx - bw // 2).clamp(0, w), (cx - bw // 2 + bw).clamp(0, w)
        mask = box_mask(h, w, y0, x0, y1, x1)
        out = torch.where(mask, x[perm], x)
        lam = 1 - ((y1 - y0) * (x1 - x0)).float() / (h * w)
        return MixedBatch(out, y, y[perm], lam)

    def __repr__(self) -> str:
        return f"CutMix(alpha={self.alpha})"
