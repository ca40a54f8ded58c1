"""Mean subtraction and standardisation with statistics computed from the training set.

:func:`channel_stats` gives per-channel mean and standard deviation (unit scale) over a training
set; :class:`Normalize` maps a batch to float32 (x - mean) / std and back with :meth:`inverse`.
``std=None`` is plain mean subtraction, as AlexNet (Krizhevsky et al. 2012) and VGG (Simonyan &
Zisserman 2015) did; a (C, H, W) mean is AlexNet's mean image. Normalisation is the last step of a
chain: its output is float32 and no longer in [0, 1].
"""

from __future__ import annotations

from cnnlab.augment.compose import check_batch, to_unit
from cnnlab.errors import ConfigError, InputShapeError


def channel_stats(images, batch_size: int = 4096):
    """(mean (C,), std (C,)) of a training set (N, C, H, W), unit scale, float64 accumulation."""
    import torch

    images = torch.as_tensor(images)
    check_batch(images, "channel_stats")
    c = images.shape[1]
    s1 = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    count = 0
    for i in range(0, images.shape[0], batch_size):
        p = to_unit(images[i:i + batch_size]).double()
        s1 += p.sum(dim=(0, 2, 3))
        s2 += (p * p).sum(dim=(0, 2, 3))
        count += p.shape[0] * p.shape[2] * p.shape[3]
    if count == 0:
        raise InputShapeError("channel_stats needs at least one pixel; got an empty set")
    mean = s1 / count
    var = (s2 / count - mean * mean).clamp(min=0)      # population variance over all pixels
    return mean.float(), var.sqrt().float()


def mean_image(images, batch_size: int = 4096):
    """(C, H, W) per-pixel mean of a training set, unit scale (AlexNet's mean image)."""
    import torch

    images = torch.as_tensor(images)
    check_batch(images, "mean_image")
    total = torch.zeros(images.shape[1:], dtype=torch.float64)
    for i in range(0, images.shape[0], batch_size):
        total += to_unit(images[i:i + batch_size]).double().sum(dim=0)
    return (total / max(1, images.shape[0])).float()


class Normalize:
    """(x - mean) / std with training-set statistics; float32 out, invertible with inverse().

    `mean` is (C,) per channel or (C, H, W) per pixel; `std` is (C,) or None (subtract only).
    """

    def __init__(self, mean, std=None, eps: float = 1e-8):
        import torch

        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self.std = None if std is None else torch.as_tensor(std, dtype=torch.float32)
        if self.mean.dim() not in (1, 3):
            raise ConfigError(f"mean must be per channel (C,) or per pixel (C, H, W); got shape "
                              f"{tuple(self.mean.shape)}")
        if self.std is not None and self.std.shape != (self.mean.shape[0],):
            raise ConfigError(f"std must be per channel ({self.mean.shape[0]},); got shape "
                              f"{tuple(self.std.shape)}")
        # a constant channel has std 0; eps keeps the division finite
        self.eps = float(eps)

    @classmethod
    def fit(cls, images, per_pixel: bool = False, subtract_only: bool = False) -> "Normalize":
        """Build from training images: channel mean/std, or the mean image (AlexNet)."""
        if per_pixel:
            return cls(mean_image(images))
        mean, std = channel_stats(images)
        return cls(mean, None if subtract_only else std)

    def _shapes(self, x):
        c = x.shape[1]
        if self.mean.shape[0] != c or (self.mean.dim() == 3 and self.mean.shape[1:] != x.shape[2:]):
            raise InputShapeError(f"Normalize statistics are for shape {tuple(self.mean.shape)}; "
                                  f"the batch is {tuple(x.shape)}. Fit them on data of this shape.")
        mean = self.mean if self.mean.dim() == 3 else self.mean[:, None, None]
        std = None if self.std is None else self.std[:, None, None] + self.eps
        return mean, std

    def __call__(self, x, generator=None):
        x = check_batch(x, "Normalize")
        mean, std = self._shapes(x)
        out = to_unit(x) - mean
        return out if std is None else out / std

    def inverse(self, z):
        """Unit-scale float32 images from normalised ones (for display or a round-trip check)."""
        z = check_batch(z, "Normalize.inverse")
        mean, std = self._shapes(z)
        z = z.float()
        return (z if std is None else z * std) + mean

    def state_dict(self) -> dict:
        """Statistics as lists, to save with a run (JSON-friendly)."""
        return {"mean": self.mean.tolist(), "std": None if self.std is None else self.std.tolist()}

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.shape}, std={'none' if self.std is None else 'set'})"
