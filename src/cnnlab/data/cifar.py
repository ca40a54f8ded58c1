"""CIFAR-10/100 "python version" batches (Krizhevsky 2009), read safely.

Accepted: a folder holding ``data_batch_1``..``data_batch_5``, ``test_batch`` and
``batches.meta`` (CIFAR-10), or ``train``, ``test`` and ``meta`` (CIFAR-100), or a folder whose
lone sub-folder does (``cifar-10-batches-py/``, ``cifar-100-python/``), or the downloaded
``.tar.gz`` of either, read in place. "train" is the five data batches (CIFAR-10) or ``train``;
"test" is ``test_batch``/``test``, and "val" falls back to it, as for image folders without val/.
CIFAR-100 uses the 100 fine labels.

The batches are pickles, and unpickling can run arbitrary code. They are read with
:class:`SafeUnpickler`, which admits only the globals that rebuild plain numpy arrays; anything
else (``os.system``, ``builtins.eval``, any class) raises :class:`~cnnlab.errors.DataError` before
it is called. The arrays are then checked: (N, 3072) uint8 data and N labels in range.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError

CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
# (module, name) pairs a CIFAR pickle legitimately needs: numpy's array reconstruction (protocol
# <= 4: _reconstruct; protocol 5: _frombuffer; modules moved to numpy._core in numpy 2), and
# _codecs.encode, which Python 3 uses for bytes pickled with protocol 2. None can run user code.
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")})


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that only rebuilds numpy arrays and plain containers (see module docstring)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def safe_load(data: bytes, where: str):
    """Unpickle CIFAR bytes with :class:`SafeUnpickler`; anything else is a DataError."""
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:    # noqa: BLE001  a hostile or corrupt pickle can raise almost anything
        raise DataError(f"{where}: not a safe CIFAR batch ({type(e).__name__}: {e}); cnnlab only "
                        f"reads pickles of plain numpy arrays. Re-download the python version "
                        f"of CIFAR from its official page.") from None


def _key(d: dict, name: str, where: str):
    for k in (name, name.encode()):
        if k in d:
            return d[k]
    raise DataError(f"{where}: expected a dict with key {name!r}; found {sorted(map(str, d))[:6]}")


@dataclass(frozen=True)
class CifarFiles:
    """Where the batches are: a folder, or members of a .tar(.gz) (`archive` set)."""

    variant: str                       # "cifar10" or "cifar100"
    root: str                          # folder path, or the prefix inside the archive
    archive: Path | None = None

    def names(self) -> dict[str, tuple[str, ...]]:
        if self.variant == "cifar10":
            return {"train": CIFAR10_TRAIN, "test": ("test_batch",), "meta": ("batches.meta",)}
        return {"train": ("train",), "test": ("test",), "meta": ("meta",)}

    def relpaths(self) -> list[str]:
        """Every batch file, relative to the source ("/"-separated)."""
        return [f"{self.root}/{n}" if self.root else n for ns in self.names().values() for n in ns]


def _variant(names: set[str]) -> str | None:
    if {*CIFAR10_TRAIN, "test_batch", "batches.meta"} <= names:
        return "cifar10"
    if {"train", "test", "meta"} <= names:
        return "cifar100"
    return None


def find_cifar(path) -> CifarFiles | None:
    """The CIFAR batches at `path` (folder, lone sub-folder, or .tar(.gz)), or None."""
    from cnnlab.data.archive import ArchiveSource, archive_kind

    p = Path(os.path.expanduser(str(path)))
    if p.is_dir():
        subs = list(p.iterdir())
        lone = [subs[0]] if len(subs) == 1 and subs[0].is_dir() else []
        for d in [p] + lone:
            files = {q.name for q in d.iterdir() if q.is_file()}
            if (v := _variant(files)) is not None:
                return CifarFiles(v, str(d))
        return None
    if p.is_file() and archive_kind(p) == "tar":
        try:
            files = ArchiveSource(p, "tar").list().files
        except DataError:
            return None
        by_dir: dict[str, set[str]] = {}
        for f in files:
            parent, _, name = f.relpath.rpartition("/")
            by_dir.setdefault(parent, set()).add(name)
        for parent, names in sorted(by_dir.items()):
            if (v := _variant(names)) is not None:
                return CifarFiles(v, parent, p)
    return None


def _read_all(cf: CifarFiles, rels: list[str]) -> dict[str, bytes]:
    from cnnlab.data.archive import ArchiveSource
    from cnnlab.data.sources import Unreadable

    if cf.archive is None:
        out = {}
        for r in rels:
            try:
                out[r] = Path(r).read_bytes()
            except OSError as e:
                raise DataError(f"cannot read CIFAR batch {r}: {e.strerror or e}") from None
        return out
    out = dict(ArchiveSource(cf.archive, "tar").payloads(rels))
    for r, data in out.items():
        if isinstance(data, Unreadable):
            raise DataError(f"{cf.archive}:{r}: {data.reason}")
    return out


def _join(cf: CifarFiles, name: str) -> str:
    if cf.archive is None:
        return os.path.join(cf.root, name)
    return f"{cf.root}/{name}" if cf.root else name


def load_cifar(path, split: str = "train"):
    """(images (N, 32, 32, 3) uint8, labels int64 (N,), classes, files read) of a CIFAR split."""
    cf = find_cifar(path)
    if cf is None:
        raise DataError(f"{path} holds no CIFAR python batches (data_batch_1..5, test_batch, "
                        f"batches.meta, or train, test, meta)")
    names = cf.names()
    part = "train" if split == "train" else "test"       # "val": the test batch, as documented
    rels = [_join(cf, n) for n in names[part]]
    meta_rel = _join(cf, names["meta"][0])
    blobs = _read_all(cf, rels + [meta_rel])
    shown = (lambda r: f"{cf.archive}:{r}") if cf.archive else str
    meta = safe_load(blobs[meta_rel], shown(meta_rel))
    label_key = "label_names" if cf.variant == "cifar10" else "fine_label_names"
    if not isinstance(meta, dict):
        raise DataError(f"{shown(meta_rel)}: expected a dict, got {type(meta).__name__}")
    classes = [c.decode("utf-8") if isinstance(c, bytes) else str(c)
               for c in _key(meta, label_key, shown(meta_rel))]
    xs, ys = [], []
    for r in rels:
        d = safe_load(blobs[r], shown(r))
        if not isinstance(d, dict):
            raise DataError(f"{shown(r)}: expected a dict, got {type(d).__name__}")
        x = np.asarray(_key(d, "data", shown(r)))
        y = np.asarray(_key(d, "labels" if cf.variant == "cifar10" else "fine_labels", shown(r)))
        if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or y.shape != (len(x),):
            raise DataError(f"{shown(r)}: expected uint8 data (N, 3072) and N labels; got "
                            f"{x.dtype} {x.shape} and {y.shape} labels")
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise DataError(f"{shown(r)}: labels outside 0..{len(classes) - 1}")
        xs.append(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))   # rows are R, G, B planes
        ys.append(y.astype(np.int64))
    files = [f"{cf.archive}:{r}" if cf.archive else r for r in rels + [meta_rel]]
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys), classes, files
