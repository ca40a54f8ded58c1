"""A labelled image data set decoded once into memory: uint8 (N, C, S, S) images, labels, classes.

:func:`load_image_dataset` takes a folder or archive (see :mod:`cnnlab.data.folder` for the layout
rules), decodes every image of one split with :func:`cnnlab.data.decode.decode_image` (the same
function serving uses) in a process pool, fits each to S x S (:func:`cnnlab.data.decode.fit_image`:
shorter side + centre crop by default, or a plain resize) and returns an :class:`ImageDataset`.
Files that cannot be used are skipped and listed in its ``skipped`` report; ``strict=True`` raises
on the first one instead, and a run stops when more than ``max_bad_fraction`` of the files are bad.
A bad file is dropped, never replaced by a neighbour.

The path may also be a (path, label) CSV (:mod:`cnnlab.data.csvlist`: decoded like a folder), or
hold CIFAR python batches (:mod:`cnnlab.data.cifar`) or MNIST IDX files (:mod:`cnnlab.data.idx`):
those are pixels already, so they are only fitted to S x S and to the mode (grey repeated to RGB,
RGB to Pillow's luma), never cached, and keep their own train/test split ("val" serves test).

uint8 keeps memory at a quarter of float32 (Imagenette's 9,469 training images at 128 px: 465 MB);
convert per batch. :func:`load_arrays` gives float32 in [0, 1] for small sets, including the
embedded digits (source None).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from cnnlab.data.decode import DEFAULT_MAX_PIXELS, FITS, WHITE, decode_with_info, fit_image
from cnnlab.data.folder import SplitSpec, make_split, read_layout, resolve_split
from cnnlab.data.report import SkipReport
from cnnlab.data.sources import Unreadable
from cnnlab.data.workers import run_tasks
from cnnlab.errors import ConfigError, DataError, InvalidImageError


@dataclass(frozen=True)
class DataConfig:
    """How an image folder or archive becomes tensors (schema and defaults)."""

    image_size: int = 32
    mode: Literal["RGB", "L"] = "RGB"          # output channels: 3 (RGB) or 1 (L, ITU-R 601-2 luma)
    fit: Literal["crop", "resize"] = "crop"    # shorter side + centre crop, or a plain resize
    val_fraction: float | None = None          # single tree only: held out per class; None = 0.2
    test_fraction: float = 0.0                 # single tree only
    seed: int = 0                              # single tree only: seeds the stratified split
    split_file: str | None = None              # a SplitSpec JSON to reuse instead of splitting
    strict: bool = False                       # raise on the first bad file instead of skipping
    allow_empty: bool = False                  # allow class folders without images
    max_bad_fraction: float | None = 0.1       # stop past this fraction of bad files (None: never)
    max_pixels: int = DEFAULT_MAX_PIXELS       # decompression-bomb limit per image (never None)
    background: tuple[int, int, int] = WHITE   # what transparent pixels are composited on
    num_workers: int | None = None             # decode processes; None: auto, 0: in-process
    progress: bool | None = None               # progress bar; None: only on a terminal
    cache_dir: str | None = None               # memory-mapped cache of decoded arrays; None: off

    def __post_init__(self):
        if int(self.image_size) < 1:
            raise ConfigError(f"image_size must be >= 1; got {self.image_size}")
        if self.mode not in ("RGB", "L"):
            raise ConfigError(f"mode must be 'RGB' or 'L'; got {self.mode!r}")
        if self.fit not in FITS:
            raise ConfigError(f"fit must be one of {FITS}; got {self.fit!r}")
        if self.max_pixels is None or int(self.max_pixels) < 1:
            raise ConfigError(f"max_pixels must be a positive pixel count; got {self.max_pixels!r}")
        if self.max_bad_fraction is not None and not 0 <= self.max_bad_fraction <= 1:
            raise ConfigError(f"max_bad_fraction must be in [0, 1] or None; "
                              f"got {self.max_bad_fraction}")
        if len(self.background) != 3 or not all(0 <= int(v) <= 255 for v in self.background):
            raise ConfigError(f"background must be three 0..255 values; got {self.background!r}")


@dataclass
class ImageDataset:
    """One split of a labelled image set, decoded: images uint8 (N, C, S, S), labels int64 (N,)."""

    images: "torch.Tensor"  # noqa: F821  (N, C, S, S) uint8
    labels: "torch.Tensor"  # noqa: F821  (N,) int64
    classes: list[str]
    skipped: SkipReport
    paths: list[str] = field(default_factory=list)   # source-relative path of each image
    split: str = "train"
    source: str = ""
    spec: SplitSpec | None = None                    # the split used: save it to reproduce a run

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> dict[str, int]:
        """Images per class (every class listed, zeros included)."""
        counts = np.bincount(self.labels.numpy(), minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts)}


def _decode_task(opts: tuple, task: tuple):
    """Worker: decode + fit one file. Returns (index, (C, S, S) uint8 or None, reason, notes)."""
    mode, background, max_pixels, image_size, fit = opts
    i, name, payload = task
    if isinstance(payload, Unreadable):
        return i, None, payload.reason, []
    try:
        d = decode_with_info(payload, mode, background, max_pixels, name=name)
        pixels = fit_image(d.pixels, image_size, fit)
    except InvalidImageError as e:
        return i, None, getattr(e, "reason", str(e)), []
    return i, np.ascontiguousarray(pixels.transpose(2, 0, 1)), None, d.notes   # (C, S, S)


def plan(path, cfg: DataConfig):
    """List a source, find its layout and split: (source, layout, spec, report). No decoding."""
    source, layout, report = read_layout(path, cfg.strict, cfg.allow_empty)
    listing_files = {p for g in layout.groups.values() for files in g.values() for p in files}
    if cfg.split_file:
        spec = SplitSpec.load(cfg.split_file).rebased(layout.root)
        missing = [p for s in spec.files.values() for p in s if p not in listing_files]
        if missing:
            raise DataError(f"split file {cfg.split_file} names {len(missing)} file(s) that "
                            f"{source.path} does not hold, e.g. {missing[:3]}; it was written for "
                            f"other data (or files were removed)")
        if spec.classes != layout.classes:
            raise DataError(f"split file {cfg.split_file} has classes {spec.classes[:5]}..., the "
                            f"data has {layout.classes[:5]}...; it was written for other data")
    else:
        spec = make_split(layout, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    return source, layout, spec, report


def load_image_dataset(path, image_size: int = 32, split: str = "train",
                       config: DataConfig | None = None, **overrides) -> ImageDataset:
    """Decode one split of an image folder or archive into uint8 tensors (see the module docstring).

    Settings come from `config` (a :class:`DataConfig`) with keyword overrides, e.g.
    ``load_image_dataset("pets/", 64, "val", val_fraction=0.1, seed=1)``.
    """
    import torch

    try:
        cfg = replace(config or DataConfig(), image_size=image_size, **overrides)
    except TypeError as e:
        fields = list(DataConfig.__dataclass_fields__)
        raise ConfigError(f"{e}; DataConfig fields are {fields}") from None
    fmt = array_format(path)
    if fmt is not None:
        return _array_dataset(path, fmt, split, cfg)
    source, layout, spec, report = plan(path, cfg)
    chosen = resolve_split(spec, split)
    rels, labels = spec.files[chosen], np.asarray(spec.labels[chosen], dtype=np.int64)

    if cfg.cache_dir:
        from cnnlab.data.cache import cached_decode

        images, ok, report = cached_decode(source, rels, cfg, report, chosen,
                                           lambda: _decode_all(source, rels, cfg, report, chosen))
    else:
        images, ok = _decode_all(source, rels, cfg, report, chosen)
    report.check_fraction(cfg.max_bad_fraction)

    labels = labels[ok]
    if not cfg.allow_empty:
        counts = np.bincount(labels, minlength=len(spec.classes))
        for c, n in zip(spec.classes, counts):
            if n == 0:
                raise DataError(f"class {c!r} has no usable image in the {chosen} split of "
                                f"{source.path} (all its files were skipped: see the report); "
                                f"fix the files or pass allow_empty=True")
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), list(spec.classes),
                        report, [r for r, k in zip(rels, ok) if k], chosen, str(source.path), spec)


def array_format(path) -> str | None:
    """'cifar' or 'idx' when `path` holds CIFAR python batches or MNIST IDX files, else None."""
    from cnnlab.data.cifar import find_cifar
    from cnnlab.data.idx import find_idx

    if path is None or str(path) in ("", "digits"):
        return None
    if find_idx(path):
        return "idx"
    if find_cifar(path) is not None:
        return "cifar"
    return None


def load_array_split(path, fmt: str, split: str):
    """(images (N, H, W, C) uint8, labels, classes, files, split served) of a CIFAR/IDX split."""
    from cnnlab.data.cifar import load_cifar
    from cnnlab.data.idx import load_idx

    if split not in ("train", "val", "test"):
        raise DataError(f"split must be 'train', 'val' or 'test'; got {split!r}")
    x, y, classes, files = (load_cifar if fmt == "cifar" else load_idx)(path, split)
    return x, y, classes, files, ("train" if split == "train" else "test")


def _array_dataset(path, fmt: str, split: str, cfg: DataConfig) -> ImageDataset:
    """An ImageDataset from CIFAR batches or IDX files: no decoding, only channel and size fits."""
    import torch

    x, y, classes, files, served = load_array_split(path, fmt, split)
    if cfg.mode == "RGB" and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    elif cfg.mode == "L" and x.shape[-1] == 3:
        # ITU-R 601-2 luma with Pillow's integer weights, so it matches decode_image(mode="L")
        luma = (x.astype(np.uint32) @ np.array([19595, 38470, 7471], np.uint32) + 0x8000) >> 16
        x = luma.astype(np.uint8)[..., None]
    if x.shape[1:3] != (cfg.image_size, cfg.image_size):
        x = np.stack([fit_image(im, cfg.image_size, cfg.fit) for im in x]) if len(x) else \
            np.empty((0, cfg.image_size, cfg.image_size, x.shape[-1]), np.uint8)
    images = np.ascontiguousarray(x.transpose(0, 3, 1, 2))            # (N, C, S, S)
    report = SkipReport(source=str(path), strict=cfg.strict, checked=len(y))
    report.note(f"{fmt} {served} split read from {', '.join(files)}")
    if cfg.split_file or cfg.val_fraction or cfg.test_fraction:
        report.note(f"split_file/val_fraction/test_fraction ignored: {fmt} files have a fixed "
                    f"train/test split")
    # the files' own train/test split, as a spec, so callers find the other split as for folders
    other = "test" if served == "train" else "train"
    labels = {served: y.tolist(), other: load_array_split(path, fmt, other)[1].tolist()}
    names = {s: [f"{s}/{i}" for i in range(len(v))] for s, v in labels.items()}
    spec = SplitSpec(classes, {s: names[s] for s in ("train", "test")},
                     {s: labels[s] for s in ("train", "test")}, "folders")
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(y), classes, report,
                        names[served], served, str(path), spec)


def _decode_all(source, rels: list[str], cfg: DataConfig, report: SkipReport, split: str):
    """Decode and fit `rels`; returns (images of the good ones (M, C, S, S), keep mask (N,))."""
    n, c, s = len(rels), (3 if cfg.mode == "RGB" else 1), cfg.image_size
    images = np.empty((n, c, s, s), dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    where = {r: i for i, r in enumerate(rels)}
    tasks = ((where[r], source.display(r), payload) for r, payload in source.payloads(rels))
    fn = functools.partial(_decode_task, (cfg.mode, tuple(cfg.background), int(cfg.max_pixels),
                                          int(cfg.image_size), cfg.fit))
    for i, pixels, reason, notes in run_tasks(fn, tasks, n, cfg.num_workers, cfg.progress,
                                              desc=f"decoding {split}"):
        if pixels is None:
            report.skip(source.display(rels[i]), reason, InvalidImageError)
            continue
        images[i], ok[i] = pixels, True
        report.notes += [f"{source.display(rels[i])}: {note}" for note in notes]
    return images[ok] if not ok.all() else images, ok


def load_arrays(source=None, split: str = "train", image_size: int = 32, **kwargs):
    """(x float32 (N, C, S, S) in [0, 1], y int64 (N,), classes) of a split; None: the digits.

    For the digits (LeCun et al. 1998 size 32 by default), "val" is their fixed test split, as for
    image folders that have test/ but no val/.
    """
    if source is None or str(source) == "digits":
        from cnnlab.data.digits import CLASSES, load_digits

        if split not in ("train", "val", "test"):
            raise DataError(f"split must be 'train', 'val' or 'test'; got {split!r}")
        xtr, ytr, xte, yte = load_digits(image_size=image_size, **kwargs)
        x, y = (xtr, ytr) if split == "train" else (xte, yte)
        return x, y, list(CLASSES)
    ds = load_image_dataset(source, image_size, split, **kwargs)
    x = ds.images.numpy().astype(np.float32) / np.float32(255.0)
    return x, ds.labels.numpy(), ds.classes
