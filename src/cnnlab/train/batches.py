"""In-memory mini-batches for data sets that fit in RAM (the embedded digits), no DataLoader needed.

The shuffle order of epoch e comes from a generator seeded with (seed, e), so epoch e visits the
same samples in the same order whether or not the run was interrupted and resumed before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from cnnlab.errors import ConfigError, DataError


class TensorBatches:
    """Iterate `(x, y)` mini-batches over tensors, reshuffled each epoch from a seeded generator."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False, shift: int = 0, fill: float = 0.0):
        if len(x) != len(y):
            raise DataError(f"images and labels differ in length: {len(x)} vs {len(y)}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed = seed
        self.shift, self.fill = shift, fill
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffle order of `epoch` (the training loop calls this)."""
        self.epoch = epoch

    def _generator(self) -> torch.Generator:
        # a large odd multiplier keeps (seed, epoch) pairs from colliding for any sane values
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)

    def order(self) -> torch.Tensor:
        """The sample indices of the current epoch, in visiting order."""
        if not self.shuffle:
            return torch.arange(len(self.y))
        return torch.randperm(len(self.y), generator=self._generator())

    def __len__(self) -> int:
        n, b = len(self.y), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        idx = self.order()
        g = self._generator()
        g.manual_seed(g.initial_seed() + 1)  # shifts independent of the order, still per epoch
        for i in range(len(self)):
            j = idx[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.x[j]
            if self.shift:
                x = random_shift(x, self.shift, self.fill, generator=g)
            yield x, self.y[j]


def random_shift(x: torch.Tensor, pad: int, fill: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each image by a random whole number of pixels in [-pad, pad] on each axis.

    Pad-and-crop, the translation augmentation of Krizhevsky et al. 2012 and of the CIFAR ResNets
    (He et al. 2016, 4-pixel pad); `fill` is the background value of the (standardised) images.
    """
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=fill)  # (N, C, H+2p, W+2p)
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n, 1), generator=generator)
    rows = (dy + torch.arange(h))[:, None, :, None]                         # (N, 1, H, 1)
    cols = (dx + torch.arange(w))[:, None, None, :]                         # (N, 1, 1, W)
    return padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
                  rows, cols]                                               # (N, C, H, W)


@dataclass
class Loaders:
    """The batches of one run plus what a checkpoint must remember about the data."""

    train: TensorBatches
    val: TensorBatches | None
    test: TensorBatches | None
    classes: list[str]
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    info: dict = field(default_factory=dict)


def digits_loaders(image_size: int = 32, batch_size: int = 64, val_fraction: float = 0.1,
                   seed: int = 0, shift: int = 0, eval_batch_size: int = 512) -> Loaders:
    """The embedded digits as standardised in-memory batches: train, val (split off train) and test.

    Standardised with the training split's mean and std, as LeCun et al. 1998 scale inputs to
    roughly zero mean and unit variance.
    """
    from sklearn.model_selection import train_test_split

    from cnnlab.data.digits import CLASSES, load_digits

    if image_size < 4:
        raise ConfigError(f"digits need image_size >= 4; got {image_size}. LeNet-5 uses 32.")
    xtr, ytr, xte, yte = load_digits(image_size=image_size)  # its own fixed, stratified test split
    xva = yva = None
    if val_fraction > 0:
        # a fixed split (not the run seed) so runs with different seeds select on the same images
        itr, iva = train_test_split(np.arange(len(ytr)), test_size=val_fraction, stratify=ytr,
                                    random_state=0)
        xtr, ytr, xva, yva = xtr[itr], ytr[itr], xtr[iva], ytr[iva]
    mean, std = float(xtr.mean()), float(xtr.std())

    def tensors(x, y):
        return torch.from_numpy((x - mean) / std).float(), torch.from_numpy(y).long()

    train = TensorBatches(*tensors(xtr, ytr), batch_size, shuffle=True, seed=seed, shift=shift,
                          fill=-mean / std)  # the standardised value of a blank (0) pixel
    val = TensorBatches(*tensors(xva, yva), eval_batch_size) if xva is not None else None
    test = TensorBatches(*tensors(xte, yte), eval_batch_size)
    info = {"name": "digits", "train": len(ytr), "val": 0 if yva is None else len(yva),
            "test": len(yte), "image_size": image_size}
    return Loaders(train, val, test, list(CLASSES), (mean,), (std,), info)
