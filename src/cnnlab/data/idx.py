"""MNIST / Fashion-MNIST IDX files (LeCun et al. 1998), gzipped or not.

A folder (or its lone sub-folder) holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally ``.gz`` (also the
``train-images.idx3-ubyte`` spelling some mirrors use). "train" is train-*, "test" is t10k-*, and
"val" falls back to test. Classes are "0".."K-1" (K = largest label + 1 over both splits): the
files do not name them, so Fashion-MNIST's classes are numbered too.

IDX layout: two zero bytes, a type byte (0x08: unsigned byte, the only type these sets use), the
number of dimensions, one big-endian uint32 per dimension, then the data. Every file is checked:
magic bytes, 3 dimensions for images and 1 for labels, a data length equal to the product of the
dimensions (truncated or padded files are refused), and as many labels as images. Each problem is
a :class:`~cnnlab.errors.DataError` naming the file.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError

_NAME = re.compile(r"^(train|t10k)-(images|labels)[-.]idx([13])-ubyte(\.gz)?$")
UBYTE = 0x08


def find_idx(path) -> dict[tuple[str, str], Path] | None:
    """{(prefix "train"/"t10k", "images"/"labels"): file} in a folder or its lone sub-folder."""
    p = Path(os.path.expanduser(str(path)))
    if not p.is_dir():
        return None
    subs = list(p.iterdir())
    lone = [subs[0]] if len(subs) == 1 and subs[0].is_dir() else []
    for d in [p] + lone:
        found = {}
        for q in sorted(d.iterdir()):
            m = _NAME.match(q.name)
            if m and q.is_file():
                found.setdefault((m.group(1), m.group(2)), q)     # sorted: plain before .gz
        if found:
            return found
    return None


def read_idx(path, ndim: int) -> np.ndarray:
    """An IDX file's uint8 array, checked (see module docstring); gzip is detected by content."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read IDX file {path}: {type(e).__name__}: {e}. The download "
                        f"may be incomplete; fetch it again.") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != UBYTE or data[3] != ndim:
        raise DataError(f"{path} is not an IDX file of unsigned bytes with {ndim} dimension(s): "
                        f"magic bytes are {data[:4].hex() or 'missing'}, expected "
                        f"0000{UBYTE:02x}{ndim:02x}")
    head = 4 + 4 * ndim
    if len(data) < head:
        raise DataError(f"{path}: header cut short ({len(data)} bytes, need {head})")
    dims = tuple(int(v) for v in np.frombuffer(data, ">u4", ndim, 4))
    want = int(np.prod(dims, dtype=np.int64))
    if len(data) - head != want:
        raise DataError(f"{path}: dimensions {dims} need {want:,} data bytes, the file has "
                        f"{len(data) - head:,} (truncated or corrupt); fetch it again")
    return np.frombuffer(data, np.uint8, want, head).reshape(dims).copy()   # writable


def load_idx(path, split: str = "train"):
    """(images (N, H, W, 1) uint8, labels int64 (N,), classes, files read) of an IDX split."""
    found = find_idx(path)
    if not found:
        raise DataError(f"{path} holds no MNIST IDX files (train-images-idx3-ubyte[.gz], ...)")
    prefix = "train" if split == "train" else "t10k"       # "val": the test files, as documented
    for part in ("images", "labels"):
        if (prefix, part) not in found:
            raise DataError(f"{path} has no {prefix}-{part}-idx{3 if part == 'images' else 1}"
                            f"-ubyte[.gz]; found {sorted(q.name for q in found.values())}")
    images = read_idx(found[prefix, "images"], 3)
    labels = read_idx(found[prefix, "labels"], 1).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(f"{found[prefix, 'images']} has {len(images):,} images but "
                        f"{found[prefix, 'labels']} has {len(labels):,} labels; the files do not "
                        f"belong together")
    top = int(labels.max()) if len(labels) else 0
    other = "t10k" if prefix == "train" else "train"
    if (other, "labels") in found:          # classes span both splits, so indices agree
        top = max(top, int(read_idx(found[other, "labels"], 1).max(initial=0)))
    classes = [str(i) for i in range(max(top + 1, 2))]
    files = [str(found[prefix, "images"]), str(found[prefix, "labels"])]
    return np.ascontiguousarray(images[..., None]), labels, classes, files
