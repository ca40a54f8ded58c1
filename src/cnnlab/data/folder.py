"""Image-folder layout: find the data root, the classes and the train/val/test splits.

Two layouts are understood, in a folder or inside an archive alike:

- **split folders**: ``ROOT/train/<class>/...`` plus ``ROOT/val/`` (or ``valid/``,
  ``validation/``) and/or ``ROOT/test/``. The split asked for as "val" is ``val/``, or ``test/``
  when there is no ``val/`` (CIFAR-10's layout); "test" is ``test/`` only. Every split must hold
  the same classes.
- **a single tree**: ``ROOT/<class>/...``. cnnlab splits it per class (stratified), seeded, with
  ``val_fraction`` (default 0.2) and ``test_fraction`` (default 0) of each class held out, at least
  one image per class in each held-out split. The result is a :class:`SplitSpec`, which can be
  saved as JSON and passed back (``split_file``) so another run uses exactly the same images.

ROOT is found automatically: starting at the top, cnnlab steps into a lone sub-folder (an
archive's ``cifar10-jpg/``, a wrapper folder) as long as that folder holds no files itself.

Classes are the sub-folder names, sorted (so index 0 is the first name in code-point order),
exactly as written: case and Unicode form are kept, and names that differ only by case or NFC/NFD
form are noted in the report. Hidden folders never become classes. **Nested folders**: a class's
images are collected recursively, so ``cat/2019/a.jpg`` is a ``cat``. Files directly in ROOT or in
a split folder belong to no class and are listed as ignored. Files in class folders that are not
images by name (``.txt``, ``.DS_Store``, ``Thumbs.db``, nested archives) or are empty (0 bytes) are
skipped and reported here, before decoding. A class folder with no image files is an error naming
it, unless ``allow_empty=True``; fewer than two classes is an error.
"""

from __future__ import annotations

import json
import unicodedata
import zlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cnnlab.data.report import SkipReport
from cnnlab.data.sources import Listing, non_image_reason, open_source
from cnnlab.errors import DataError

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
SPLITS = ("train", "val", "test")


@dataclass
class Layout:
    """Where the data sits in a source and which files belong to which class and split folder."""

    root: str                                   # "" or "a/b": the data root inside the source
    classes: list[str]
    # split folder ("train"/"val"/"test", or "all" for a single tree) -> class -> relpaths (sorted)
    groups: dict[str, dict[str, list[str]]]
    split_dirs: dict[str, str] = field(default_factory=dict)   # split -> folder name as found

    @property
    def presplit(self) -> bool:
        return "all" not in self.groups


def _children(listing: Listing):
    """Map each folder ("" = top) to its sub-folder names and its files' relpaths."""
    subdirs: dict[str, set[str]] = defaultdict(set)
    files: dict[str, list[str]] = defaultdict(list)
    for d in listing.dirs:
        parent, _, name = d.rpartition("/")
        subdirs[parent].add(name)
    for f in listing.files:
        parent, _, _ = f.relpath.rpartition("/")
        files[parent].append(f.relpath)
    return subdirs, files


def _find_root(subdirs, files) -> str:
    root = ""
    while len(subdirs.get(root, ())) == 1 and not files.get(root):
        (only,) = subdirs[root]
        child = f"{root}/{only}" if root else only
        if only.lower() in SPLIT_NAMES or files.get(child):
            break               # a lone train/ folder, or a lone class folder: stop here
        root = child
    return root


def _under(folder: str, subdirs, files) -> list[str]:
    """Every file below `folder`, recursively (hidden folders were never listed)."""
    out, stack = [], [folder]
    while stack:
        d = stack.pop()
        out += files.get(d, [])
        stack += [f"{d}/{s}" for s in subdirs.get(d, ())]
    return sorted(out)


def _note_clashes(classes: list[str], report: SkipReport) -> None:
    groups = defaultdict(list)
    for c in classes:
        groups[unicodedata.normalize("NFC", c).casefold()].append(c)
    for names in groups.values():
        if len(names) > 1:
            report.note(f"class folders {names} differ only by case or Unicode form; they are "
                        f"separate classes here but would merge on a case-insensitive disk")


def _note_unicode_twins(paths, display, report: SkipReport) -> None:
    """Note files whose names differ only by Unicode form (NFC/NFD): both are kept as data."""
    by_form = defaultdict(list)
    for path in paths:
        by_form[unicodedata.normalize("NFC", path)].append(path)
    for names in by_form.values():
        if len(names) > 1:
            report.note(f"files {[display(n) for n in names]} have the same name in different "
                        f"Unicode forms (NFC/NFD); both are used, but copies to macOS may merge")


def find_layout(listing: Listing, report: SkipReport, display=str,
                allow_empty: bool = False) -> Layout:
    """Find the data root, classes and split folders of a listing; files that are not images go to
    `report` (see the module docstring for the rules)."""
    subdirs, files = _children(listing)
    sizes = {f.relpath: f.size for f in listing.files}
    root = _find_root(subdirs, files)
    shown_root = display(root)
    for f in files.get(root, []):
        report.ignore(display(f), "file outside any class folder")

    top = sorted(subdirs.get(root, ()))
    split_dirs: dict[str, str] = {}
    if any(name.lower() == "train" for name in top):
        for name in top:
            split = SPLIT_NAMES.get(name.lower())
            if split is None:
                report.ignore(display(f"{root}/{name}" if root else name),
                              "not a split folder (expected train/, val/ or test/)")
            elif split in split_dirs:
                raise DataError(f"{shown_root} has both {split_dirs[split]}/ and {name}/ as the "
                                f"{split} split; keep one of them")
            else:
                split_dirs[split] = name
        parents = {s: f"{root}/{split_dirs[s]}" if root else split_dirs[s]
                   for s in SPLITS if s in split_dirs}
    else:
        parents = {"all": root}

    groups: dict[str, dict[str, list[str]]] = {}
    for split, parent in parents.items():
        for f in files.get(parent, []) if parent != root else []:
            report.ignore(display(f), "file directly in a split folder, outside any class folder")
        groups[split] = {}
        for cls in sorted(subdirs.get(parent, ())):
            images = []
            for rel in _under(f"{parent}/{cls}" if parent else cls, subdirs, files):
                report.checked += 1
                reason = non_image_reason(rel) or (None if sizes[rel] else "empty file (0 bytes)")
                if reason:
                    report.skip(display(rel), reason)
                else:
                    images.append(rel)
            groups[split][cls] = images

    class_sets = {s: set(g) for s, g in groups.items()}
    first = "train" if "train" in groups else "all"
    classes = sorted(class_sets[first])
    where = f"{shown_root}/{split_dirs[first]}" if first in split_dirs else shown_root
    if not classes:
        raise DataError(f"no class folders in {where}: expected one sub-folder per class "
                        f"(e.g. cat/*.jpg, dog/*.jpg), optionally inside train/ and val/ folders")
    if len(classes) == 1:
        raise DataError(f"only one class folder ({classes[0]!r}) in {where}; classification needs "
                        f"at least two. Point at the folder that holds all the class folders.")
    for split, cs in class_sets.items():
        if cs != class_sets[first]:
            missing = sorted(class_sets[first] - cs)
            extra = sorted(cs - class_sets[first])
            raise DataError(
                f"the {split_dirs[split]}/ split of {shown_root} does not have the classes of "
                f"{split_dirs[first]}/: missing {missing}, extra {extra}. Every split needs the "
                f"same class folders.")
    if not allow_empty:
        for split, g in groups.items():
            for cls, images in g.items():
                if not images:
                    folder = "/".join(p for p in (root, split_dirs.get(split, ""), cls) if p)
                    raise DataError(f"class folder {display(folder)} holds no image files; add "
                                    f"images, remove the folder, or pass allow_empty=True "
                                    f"(--allow-empty)")
    _note_clashes(classes, report)
    _note_unicode_twins(sizes, display, report)
    return Layout(root, classes, groups, split_dirs)


def read_layout(path, strict: bool = False, allow_empty: bool = False):
    """Open and list a folder, archive or (path, label) CSV and find its layout: (source, layout,
    report).

    The report starts with what listing found (broken links, unsafe archive members, hidden
    folders) and the non-image files of every class folder; nothing is decoded yet.
    """
    from cnnlab.data.csvlist import is_csv, read_csv_layout
    from cnnlab.data.dataset import array_format

    if path is not None and is_csv(path):
        return read_csv_layout(path, strict)
    if (fmt := array_format(path)) is not None:
        raise DataError(f"{path} holds {fmt} files, whose train/test split is fixed; they load "
                        f"with load_image_dataset/load_arrays (--data), but have no image-folder "
                        f"layout to split or preview")
    source = open_source(path)
    listing = source.list()
    report = SkipReport(source=str(source.path), strict=strict)
    for s in listing.report.skipped:
        report.checked += 1
        report.skip(s.path, s.reason)
    report.ignored += listing.report.ignored
    report.notes += listing.report.notes
    return source, find_layout(listing, report, source.display, allow_empty), report


@dataclass
class SplitSpec:
    """Which files form train/val/test, and how that was decided.

    In memory, paths are relative to the source (``root/...``); the saved JSON holds them relative
    to the data root, so a split written for an archive also fits the extracted folder.
    """

    classes: list[str]
    files: dict[str, list[str]]           # split -> relpaths, sorted by (class, path)
    labels: dict[str, list[int]]          # split -> class index per file
    method: str                           # "folders" or "stratified"
    seed: int | None = None
    val_fraction: float | None = None
    test_fraction: float | None = None
    root: str = ""                        # the data root inside the source that paths start with

    def rebased(self, root: str) -> "SplitSpec":
        """The same split with paths moved from this spec's root to `root`."""
        cut = len(self.root) + 1 if self.root else 0
        add = f"{root}/" if root else ""
        files = {s: [add + p[cut:] for p in ps] for s, ps in self.files.items()}
        return replace(self, files=files, root=root)

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class for each split that has files."""
        return {s: {c: self.labels[s].count(i) for i, c in enumerate(self.classes)}
                for s in self.files}

    def to_dict(self) -> dict:
        return {"format": "cnnlab-split/1", "method": self.method, "seed": self.seed,
                "val_fraction": self.val_fraction, "test_fraction": self.test_fraction,
                "classes": self.classes,
                "splits": {s: dict(zip(self.rebased("").files[s], self.labels[s]))
                           for s in self.files}}

    def save(self, path) -> Path:
        """Write the split as JSON (split -> {path: label}) so a run can reproduce it."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path) -> "SplitSpec":
        """Read a split written by :meth:`save`."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
            if d.get("format") != "cnnlab-split/1":
                raise ValueError(f"format is {d.get('format')!r}, expected 'cnnlab-split/1'")
            files = {s: [str(p) for p in pairs] for s, pairs in d["splits"].items()}
            labels = {s: [int(y) for y in pairs.values()] for s, pairs in d["splits"].items()}
            return cls(list(d["classes"]), files, labels, d["method"], d.get("seed"),
                       d.get("val_fraction"), d.get("test_fraction"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"cannot read split file {path}: {e}. Write one with "
                            f"SplitSpec.save or `cnnlab data split`.") from None


def _held_out(n: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return max(1, int(round(n * fraction)))   # every class shows up in every held-out split


def make_split(layout: Layout, val_fraction: float | None = None, test_fraction: float = 0.0,
               seed: int = 0) -> SplitSpec:
    """Train/val/test files of a layout: its split folders, or a stratified, seeded split.

    Split folders are kept as they are, except that a layout with train/ but no val/ (CIFAR's
    train/ + test/) gets `val_fraction` of each train/ class held out as val, so that choosing a
    checkpoint never looks at test/. `val_fraction` None keeps such a layout as it is (val then
    falls back to test/, see :func:`resolve_split`); for a single tree None means 0.2.
    """
    classes = layout.classes
    index = {c: i for i, c in enumerate(classes)}
    if layout.presplit:
        files, labels = {}, {}
        for split, g in layout.groups.items():
            pairs = [(p, index[c]) for c in classes for p in g[c]]
            files[split] = [p for p, _ in pairs]
            labels[split] = [y for _, y in pairs]
        if "val" in files or "train" not in files or not val_fraction:
            return SplitSpec(classes, files, labels, "folders", root=layout.root)
        held = _stratified(layout.groups["train"], classes, float(val_fraction), 0.0, seed)
        for s in ("train", "val"):
            files[s], labels[s] = held[s]
        return SplitSpec(classes, files, labels, "folders+val", seed, float(val_fraction), None,
                         layout.root)

    val_fraction = 0.2 if val_fraction is None else float(val_fraction)
    test_fraction = float(test_fraction or 0.0)
    out = _stratified(layout.groups["all"], classes, val_fraction, test_fraction, seed)
    keep = [s for s in SPLITS if s == "train" or out[s][0]]
    return SplitSpec(classes, {s: out[s][0] for s in keep}, {s: out[s][1] for s in keep},
                     "stratified", seed, val_fraction, test_fraction, layout.root)


def _stratified(groups: dict[str, list[str]], classes: list[str], val_fraction: float,
                test_fraction: float, seed: int) -> dict[str, tuple[list[str], list[int]]]:
    """Hold out val and test fractions of every class, seeded: split -> (paths, labels)."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(f"val_fraction and test_fraction must be in [0, 1) and sum below 1; got "
                        f"{val_fraction} and {test_fraction}")
    out = {s: ([], []) for s in SPLITS}
    for label, c in enumerate(classes):
        paths = groups.get(c, [])
        n = len(paths)
        n_val, n_test = _held_out(n, val_fraction), _held_out(n, test_fraction)
        if n and n - n_val - n_test < 1:
            raise DataError(f"class {c!r} has {n} image(s): too few to hold out val "
                            f"({val_fraction}) and test ({test_fraction}) and still train on one. "
                            f"Add images or lower the fractions.")
        # a generator per class, seeded by (seed, class name): adding a class leaves the others'
        # splits unchanged
        rng = np.random.default_rng([seed, zlib.crc32(c.encode("utf-8", "surrogatepass"))])
        order = rng.permutation(n)
        parts = {"val": order[:n_val], "test": order[n_val:n_val + n_test],
                 "train": order[n_val + n_test:]}
        for s, idx in parts.items():
            chosen = sorted(paths[i] for i in idx)
            out[s][0].extend(chosen)
            out[s][1].extend([label] * len(chosen))
    return out


def resolve_split(spec: SplitSpec, split: str) -> str:
    """The split of `spec` that serves `split` ("val" falls back to test/ when there is no val/)."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {list(SPLITS)}; got {split!r}")
    if split in spec.files:
        return split
    if split == "val" and spec.method == "folders" and "test" in spec.files:
        return "test"
    have = sorted(spec.files)
    hint = ("add a val/ or test/ folder" if spec.method.startswith("folders")
            else f"set {split}_fraction > 0")
    raise DataError(f"no {split} split: the data has {have}. To get one, {hint}.")
