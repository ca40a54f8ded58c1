"""A CSV of (path, label) rows as a data set: the image-list format many labelling tools export.

Rules:

- Columns: ``path, label`` and optionally ``split`` (train/val/valid/validation/test). A header
  row is optional; it is recognised when its cells are column names (``path``/``file``/
  ``filename``/``image``, ``label``/``class``/``target``/``category``, ``split``), and then the
  columns may come in any order and extra columns are ignored.
- Paths are relative to the CSV's folder (absolute paths are accepted as written); "/" or "\\"
  separators both work.
- Classes are the distinct labels, exactly as written (no trimming of inner spaces, no case
  folding), sorted; when every label is an integer they are sorted numerically, so label "3" is
  class index 3 when the labels are 0..K-1.
- With a split column, the rows say the split (like train/ and val/ folders, "val" falls back to
  "test"); without one, cnnlab splits the rows per class, stratified and seeded, as for a single
  folder tree.
- Bad rows never stop the load: a row with too few cells or an empty path or label, an unknown
  split name, a file that does not exist, a non-image file, a path listed twice with different
  labels: each is skipped and listed in the report with the CSV's row number. Labels that differ
  only by case or Unicode form (NFC/NFD), and file names that do, are noted.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path

from cnnlab.data.folder import SPLIT_NAMES, Layout, _note_clashes, _note_unicode_twins
from cnnlab.data.report import SkipReport
from cnnlab.data.sources import FolderSource, non_image_reason
from cnnlab.errors import DataError

PATH_NAMES = ("path", "file", "filename", "file_name", "filepath", "image", "image_path", "img")
LABEL_NAMES = ("label", "class", "target", "category", "class_name", "y")


def is_csv(path) -> bool:
    """True for an existing regular file whose name ends in .csv."""
    p = Path(os.path.expanduser(str(path)))
    return p.suffix.lower() == ".csv" and p.is_file()


def _columns(first: list[str]) -> tuple[dict[str, int], bool]:
    """Column indices (path, label, split) and whether `first` is a header row."""
    names = [c.strip().lower() for c in first]
    path = next((i for i, n in enumerate(names) if n in PATH_NAMES), None)
    label = next((i for i, n in enumerate(names) if n in LABEL_NAMES), None)
    if path is not None and label is not None:
        cols = {"path": path, "label": label}
        if "split" in names:
            cols["split"] = names.index("split")
        return cols, True
    return {"path": 0, "label": 1, "split": 2}, False


def _class_order(labels) -> list[str]:
    labels = set(labels)
    try:
        return sorted(labels, key=lambda s: (int(s), s))
    except ValueError:
        return sorted(labels)


def read_csv_layout(path, strict: bool = False):
    """Read a (path, label[, split]) CSV: (FolderSource of its folder, Layout, SkipReport)."""
    csv_path = Path(os.path.expanduser(str(path)))
    source = FolderSource(csv_path.parent)
    report = SkipReport(source=str(csv_path), strict=strict)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:   # -sig: Excel's BOM
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read CSV {csv_path}: {e}. Expected UTF-8 rows of "
                        f"path,label[,split]") from None
    # reported as row numbers, not line numbers: a quoted cell may span lines
    rows = [(n, r) for n, r in enumerate(rows, 1) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"CSV {csv_path} has no rows; expected path,label[,split] rows")
    cols, header = _columns(rows[0][1])
    if header:
        rows = rows[1:]
    has_split = "split" in cols and any(len(r) > cols["split"] and r[cols["split"]].strip()
                                        for _, r in rows)
    chosen: dict[str, tuple[int, str, str]] = {}      # relpath -> (row, label, split)
    for n, r in rows:
        where = f"{csv_path}:row {n}"
        if len(r) <= max(cols["path"], cols["label"]):
            report.checked += 1
            report.skip(where, f"row has {len(r)} cell(s); expected path,label[,split]")
            continue
        raw, label = r[cols["path"]].strip(), r[cols["label"]]
        report.checked += 1
        if not raw or not label.strip():
            report.skip(where, "empty path or label")
            continue
        split = "all"
        if has_split:
            name = r[cols["split"]].strip().lower() if len(r) > cols["split"] else ""
            split = SPLIT_NAMES.get(name)
            if split is None:
                report.skip(where, f"split {name!r} is not train, val/valid/validation or test")
                continue
        raw = raw.replace("\\", "/")
        rel = os.path.relpath(raw, csv_path.parent).replace(os.sep, "/") \
            if os.path.isabs(raw) else os.path.normpath(raw).replace(os.sep, "/")
        shown = source.display(rel)
        reason = non_image_reason(rel)
        if reason is None:
            try:
                if not os.path.isfile(shown):
                    reason = "file does not exist (paths are relative to the CSV's folder)"
                elif os.path.getsize(shown) == 0:
                    reason = "empty file (0 bytes)"
            except OSError as e:
                reason = f"cannot read file ({e.strerror or e})"
        if reason:
            report.skip(f"{where}: {shown}", reason)
            continue
        if rel in chosen:
            first_row, first_label, first_split = chosen[rel]
            if (first_label, first_split) != (label, split):
                report.skip(f"{where}: {shown}", f"listed again with label {label!r} (split "
                                                 f"{split}); row {first_row} ({first_label!r}, "
                                                 f"{first_split}) is used")
            else:
                report.note(f"{where}: {shown} repeats row {first_row}; used once")
            continue
        chosen[rel] = (n, label, split)

    classes = _class_order(label for _, label, _ in chosen.values())
    _note_clashes(classes, report)           # labels that differ only by case or NFC/NFD form
    _note_unicode_twins(chosen, source.display, report)
    if len(classes) < 2:
        raise DataError(f"CSV {csv_path} has {len(classes)} usable label(s) {classes}; "
                        f"classification needs at least two. Check the label column and the "
                        f"skipped rows: {[s.reason for s in report.skipped[:3]]}")
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: {c: [] for c in classes})
    for rel, (_, label, split) in sorted(chosen.items()):
        groups[split][label].append(rel)
    if has_split and "train" not in groups:
        raise DataError(f"CSV {csv_path} has a split column but no 'train' rows; mark the "
                        f"training rows train (or leave the split column out)")
    order = ("train", "val", "test") if has_split else ("all",)
    layout = Layout("", classes, {s: groups[s] for s in order if s in groups},
                    {s: s for s in order if s in groups and s != "all"})
    return source, layout, report
