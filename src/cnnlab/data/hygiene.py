"""Data set hygiene: exact duplicate images and a manifest hash that names the data a run used.

- **Duplicates**: files with the same bytes (SHA-256 of the file, not of decoded pixels, so a
  re-encoded copy is not caught). A copy filed under two classes is a labelling error; a copy in
  both train and val/test leaks the answer into the score. Both are listed by
  :func:`find_duplicates`, in `cnnlab data info` and as notes in its report.
- **Manifest hash** (:func:`manifest_hash`): SHA-256 over the class list and the sorted
  (split group, class, relpath, size, content hash) of every image file. Paths are relative to the
  data root, so a folder and a .tar.gz of it hash the same; renaming, relabelling, adding, removing
  or changing a file changes it; modification times do not (a copy hashes like the original). A
  run records it so a result can be tied to the exact data (RELIABILITY.md B6).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass

MANIFEST_FORMAT = "cnnlab-manifest/1"


@dataclass(frozen=True)
class FileRecord:
    """One data file as the manifest and the duplicate finder see it."""

    group: str            # split folder ("train", "val", "test") or "all" for a single tree
    cls: str              # class name ("" for files that are not images of one class)
    relpath: str          # relative to the data root, "/"-separated
    size: int             # bytes; -1 when the file could not be read
    sha: str              # SHA-256 hex of the bytes; "" when unreadable
    shown: str = ""       # how reports name it (full path or archive:member)


def content_hash(data: bytes) -> str:
    """SHA-256 hex of a file's bytes."""
    return hashlib.sha256(data).hexdigest()


def manifest_digest(classes: list[str], records) -> str:
    """The manifest hash of `records` (see the module docstring); order does not matter."""
    h = hashlib.sha256(json.dumps({"format": MANIFEST_FORMAT, "classes": list(classes)},
                                  ensure_ascii=False).encode("utf-8", "surrogatepass"))
    for r in sorted(records, key=lambda r: (r.group, r.cls, r.relpath)):
        h.update(f"\n{r.group}\0{r.cls}\0{r.relpath}\0{r.size}\0{r.sha}"
                 .encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def find_duplicates(records, split_of=None) -> list[dict]:
    """Groups of files with identical bytes, each with its classes and splits and whether it
    crosses classes or splits. `split_of(record)` names a record's split (default: its group)."""
    by_sha = defaultdict(list)
    for r in records:
        if r.sha:
            by_sha[r.sha].append(r)
    out = []
    for sha, rs in sorted(by_sha.items(), key=lambda kv: kv[1][0].relpath):
        if len(rs) < 2:
            continue
        splits = [split_of(r) if split_of else r.group for r in rs]
        out.append({"sha256": sha, "paths": [r.shown or r.relpath for r in rs],
                    "classes": sorted({r.cls for r in rs}), "splits": sorted(set(splits)),
                    "across_classes": len({r.cls for r in rs}) > 1,
                    "across_splits": len(set(splits)) > 1})
    return out


def duplicate_summary(groups: list[dict]) -> dict:
    """Counts for a report: duplicate groups, those across classes, those across splits."""
    return {"groups": len(groups), "files": sum(len(g["paths"]) for g in groups),
            "across_classes": sum(g["across_classes"] for g in groups),
            "across_splits": sum(g["across_splits"] for g in groups), "list": groups}


def note_duplicates(groups: list[dict], report) -> None:
    """Add a note to `report` for every duplicate group that crosses classes or splits."""
    for g in groups:
        where = []
        if g["across_classes"]:
            where.append(f"classes {g['classes']}")
        if g["across_splits"]:
            where.append(f"splits {g['splits']}")
        if where:
            report.note(f"identical files in different {' and '.join(where)}: {g['paths']}")


def _strip_root(relpath: str, root: str) -> str:
    return relpath[len(root) + 1:] if root and relpath.startswith(root + "/") else relpath


def layout_records(source, layout) -> list[FileRecord]:
    """Read every image file of a layout once and return its records (relpaths from the root)."""
    from pathlib import Path

    from cnnlab.data.sources import Unreadable

    where = {p: (split, cls) for split, g in layout.groups.items()
             for cls, files in g.items() for p in files}
    out = []
    for rel, payload in source.payloads(sorted(where)):
        if isinstance(payload, Unreadable):
            data = None
        elif isinstance(payload, bytes):
            data = payload
        else:
            try:
                data = Path(payload).read_bytes()
            except OSError:
                data = None
        split, cls = where[rel]
        out.append(FileRecord(split, cls, _strip_root(rel, layout.root),
                              -1 if data is None else len(data),
                              "" if data is None else content_hash(data), source.display(rel)))
    return out


def array_records(files: list[str]) -> list[FileRecord]:
    """Records of a CIFAR/IDX data set: its batch/IDX files themselves (by name, size, hash)."""
    out = []
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        out.append(FileRecord("files", "", os.path.basename(f), len(data), content_hash(data), f))
    return out


def manifest_hash(path) -> str:
    """A stable hash naming the data at `path`: folder, archive, CSV, CIFAR batches or IDX files
    (see the module docstring; RELIABILITY.md C10/B6)."""
    from cnnlab.data.dataset import array_format

    fmt = array_format(path)
    if fmt is not None:
        return _array_manifest(path, fmt)
    from cnnlab.data.folder import read_layout

    source, layout, _ = read_layout(path, allow_empty=True)
    return manifest_digest(layout.classes, layout_records(source, layout))


def _array_manifest(path, fmt: str) -> str:
    from cnnlab.data.cifar import find_cifar
    from cnnlab.data.dataset import load_array_split
    from cnnlab.data.idx import find_idx

    if fmt == "idx":
        files = sorted(str(p) for p in find_idx(path).values())
        classes = load_array_split(path, fmt, "train")[2]
        return manifest_digest(classes, array_records(files))
    cf = find_cifar(path)
    classes = load_array_split(path, fmt, "test")[2]
    if cf.archive is not None:            # the archive's bytes name everything inside it
        return manifest_digest(classes, array_records([str(cf.archive)]))
    files = [os.path.join(cf.root, n) for ns in cf.names().values() for n in ns]
    return manifest_digest(classes, array_records(files))
