"""In-memory mini-batches for data sets that fit in RAM (digits, decoded image folders).

The shuffle order of epoch e comes from a generator seeded with (seed, e), so epoch e visits the
same samples in the same order whether or not the run was interrupted and resumed before it.

Image folders stay uint8 in memory (a quarter of float32). Per training batch: the train-time
augmentation on the uint8 pixels (:mod:`cnnlab.augment`'s pad-and-crop and horizontal flip, drawn
from the epoch's generator), then ``(pixel / 255 - mean) / std`` with the training split's
per-channel statistics. Evaluation batches are only standardised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from cnnlab.errors import ConfigError, DataError


class TensorBatches:
    """Iterate `(x, y)` mini-batches over tensors, reshuffled each epoch from a seeded generator."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False, shift: int = 0, fill: float = 0.0,
                 flip: bool = False, mean=None, std=None, transform=None):
        if len(x) != len(y):
            raise DataError(f"images and labels differ in length: {len(x)} vs {len(y)}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed = seed
        self.shift, self.fill, self.flip = shift, fill, flip
        self.transform = transform  # a cnnlab.augment transform, applied before standardising
        # uint8 images are standardised per batch with these per-channel [0, 1]-scale statistics
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32)[:, None, None]
        self.epoch = 0
        self.skip = 0   # batches to pass over once (resuming mid-epoch); the draws still happen
        self.alternate_flip = False  # mirror by alternate_flip_mask (train.run sets it), not flip
        self.batch_indices: torch.Tensor | None = None  # sample indices of the batch last yielded

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffle order of `epoch` (the training loop calls this)."""
        self.epoch = epoch

    def skip_batches(self, n: int) -> None:
        """Make the next pass start at batch `n` of its epoch, as if the first n had been taken."""
        self.skip = n

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        """A batch as float32: uint8 pixels standardised with mean/std, float passed through."""
        if x.dtype != torch.uint8:
            return x
        x = x.float().div_(255.0)
        return x if self.mean is None else x.sub_(self.mean).div_(self.std)

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
        skip, self.skip = self.skip, 0
        # once per epoch: the mask draws nothing from g
        mirror = (alternate_flip_mask(len(self.y), self.seed, self.epoch)
                  if self.alternate_flip else None)
        for i in range(len(self)):
            j = idx[i * self.batch_size:(i + 1) * self.batch_size]
            if i < skip:  # consume this batch's random draws so later batches match a full pass
                self._augment(self.x[j], g)
                continue
            self.batch_indices = j
            yield self._augment(self.x[j], g, None if mirror is None else mirror[j]), self.y[j]

    def _augment(self, x: torch.Tensor, g: torch.Generator, mirror=None) -> torch.Tensor:
        if self.transform is not None:
            x = self.transform(x, generator=g)
        x = self.to_float(x)
        if self.shift:
            x = random_shift(x, self.shift, self.fill, generator=g)
        if self.flip:
            x = random_hflip(x, generator=g)
        if mirror is not None:  # alternate_flip: this batch's rows of the epoch's mask
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        return x


def alternate_flip_mask(n: int, seed: int, epoch: int) -> torch.Tensor:
    """Which of `n` images to mirror in `epoch`: a random half in even epochs, the other half in
    odd ones, so every two epochs show each image both ways (Jordan 2024, airbench)."""
    # a stream apart from the (seed, epoch) order and augmentation generators
    phase = torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(seed + 2**40))
    return phase.bool() ^ bool(epoch % 2)


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


def random_hflip(x: torch.Tensor, p: float = 0.5,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability `p` (Krizhevsky et al. 2012)."""
    flip = torch.rand(len(x), generator=generator) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


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
    split: object = None      # image folders: the cnnlab.data.SplitSpec used (saved as split.json)
    skipped: object = None    # image folders: the cnnlab.data.SkipReport of unusable files


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


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple, tuple]:
    """Per-channel mean and std of uint8 (N, C, H, W) images on the [0, 1] scale (float64 sums)."""
    if len(images) == 0:
        raise DataError("the training split is empty; nothing to compute statistics from")
    c = images.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, len(images), chunk):  # chunks: a float64 copy of Imagenette is 3.7 GB
        part = images[i:i + chunk].double().div_(255.0)
        s += part.sum(dim=(0, 2, 3))
        s2 += part.square().sum(dim=(0, 2, 3))
    n = images.numel() / c
    mean = s / n
    std = (s2 / n - mean.square()).clamp_min(0).sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # a constant channel: leave its scale
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def folder_loaders(path, image_size: int, batch_size: int, *, one_channel_if_grey: bool = False,
                   val_fraction: float = 0.1, test_fraction: float = 0.0, seed: int = 0,
                   shift: int = 0, flip: bool = True, split_file=None, data_overrides=None,
                   eval_batch_size: int = 256) -> Loaders:
    """An image folder or archive decoded once into uint8 memory, as train/val/test batches.

    The split (stratified per class, or the data's own train/val/test folders) comes from
    :func:`cnnlab.data.load_image_dataset`; `split_file` reuses a saved one. The loaders also
    carry what a run directory keeps about the data: the SplitSpec and the merged SkipReport.
    """
    from cnnlab.data import SkipReport, load_image_dataset
    from cnnlab.data.folder import resolve_split

    opts = dict(mode="RGB", val_fraction=val_fraction, test_fraction=test_fraction, seed=0,
                split_file=str(split_file) if split_file else None, **(data_overrides or {}))
    # seed 0, not the run seed: runs with different seeds then select and test on the same images
    train_ds = load_image_dataset(path, image_size, "train", **opts)
    spec = train_ds.spec
    # decoded as RGB; grey data (R = G = B everywhere) keeps one channel for a one-channel model
    one = one_channel_if_grey and bool((train_ds.images == train_ds.images[:, :1]).all())
    splits = {}
    for name in ("val", "test"):
        try:
            splits[name] = resolve_split(spec, name)
        except DataError:
            splits[name] = None
    if splits["val"] is not None and splits["val"] == splits["test"]:
        splits["test"] = None  # test/ without val/ serves as val; it is not reported twice
    loaded = {n: load_image_dataset(path, image_size, s, **opts) for n, s in splits.items() if s}
    report = SkipReport(source=train_ds.skipped.source, strict=train_ds.skipped.strict)
    report.extend(train_ds.skipped)
    for ds in loaded.values():   # the listing part of each report repeats the train one's
        report.skipped += [s for s in ds.skipped.skipped if s not in report.skipped]
    def pixels(ds):
        return ds.images[:, :1].contiguous() if one else ds.images

    mean, std = channel_stats(pixels(train_ds))

    def eval_batches(name):
        ds = loaded.get(name)
        return None if ds is None else TensorBatches(pixels(ds), ds.labels, eval_batch_size,
                                                      mean=mean, std=std)

    try:  # the shared augmentation module; its pad-and-crop pads with black, as for CIFAR
        from cnnlab.augment import Compose, HorizontalFlip, RandomCrop

        steps = ([RandomCrop(image_size, padding=shift)] if shift else []) + (
            [HorizontalFlip()] if flip else [])
        transform, shift, flip = (Compose(steps) if steps else None), 0, False
    except ImportError:  # a tree without cnnlab.augment: the minimal in-file shift and flip
        transform = None
    train = TensorBatches(pixels(train_ds), train_ds.labels, batch_size, shuffle=True, seed=seed,
                          shift=shift, flip=flip, mean=mean, std=std, transform=transform)
    info = {"name": str(path), "train": len(train_ds), "image_size": image_size,
            "channels": 1 if one else 3, "split_method": spec.method,
            **{n: len(ds) for n, ds in loaded.items()},
            "val_from": splits["val"], "skipped": len(report.skipped)}
    return Loaders(train, eval_batches("val"), eval_batches("test"), list(train_ds.classes),
                   mean, std, info, split=spec, skipped=report)
