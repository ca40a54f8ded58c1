"""What is in a data set and what is wrong with it: the library behind `cnnlab data info`/`scan`.

:func:`dataset_info` checks every file's header (format, size, pixel limit, structure) and fully
decodes a seeded sample of the training split (500 images by default; ``sample=None`` decodes all)
for the per-channel mean and std, which it computes over all pixels of the sample, as RGB in
[0, 1]. :func:`scan` fully decodes every file (``quick=True``: headers only) and returns the skip
report: a truncated JPEG is only caught by decoding it, a wrong extension by the header.
"""

from __future__ import annotations

import functools
import statistics
from collections import Counter

import numpy as np

from cnnlab.data.decode import DEFAULT_MAX_PIXELS, WHITE, decode_with_info, probe_image
from cnnlab.data.folder import make_split, read_layout
from cnnlab.data.hygiene import (FileRecord, content_hash, duplicate_summary, find_duplicates,
                                 manifest_digest, note_duplicates)
from cnnlab.data.report import SkipReport
from cnnlab.data.sources import Unreadable
from cnnlab.data.workers import run_tasks
from cnnlab.errors import DataError, InvalidImageError


PROBE, DECODE, STATS = 0, 1, 2     # what a worker does with a file: header, full decode, + sums


def _check_task(max_pixels: int, task: tuple) -> dict:
    """Worker: check a file's header (PROBE) or decode it (DECODE; STATS adds channel sums)."""
    i, name, payload, level = task
    if isinstance(payload, Unreadable):
        return {"i": i, "reason": payload.reason, "size": -1, "sha": ""}
    if not isinstance(payload, bytes):
        try:            # read here once: the header check and the content hash share the bytes
            with open(payload, "rb") as f:
                payload = f.read()
        except OSError as e:
            return {"i": i, "reason": f"cannot read file ({e.strerror or e})", "size": -1,
                    "sha": ""}
    seen = {"size": len(payload), "sha": content_hash(payload)}
    try:
        if level == PROBE:
            h = probe_image(payload, max_pixels, name=name)
            w, ht = (h.height, h.width) if h.orientation >= 5 else (h.width, h.height)
            return {"i": i, "w": w, "h": ht, "mode": h.mode, "format": h.format} | seen
        d = decode_with_info(payload, "RGB", WHITE, max_pixels, name=name)
    except InvalidImageError as e:
        return {"i": i, "reason": getattr(e, "reason", str(e))} | seen
    out = {"i": i, "w": d.pixels.shape[1], "h": d.pixels.shape[0], "mode": d.source_mode,
           "format": d.format, "notes": d.notes} | seen
    if level == STATS:
        px = d.pixels.reshape(-1, 3)
        sq = px.astype(np.uint32) ** 2                  # exact integer sums: 255^2 * 40 MP fits
        out |= {"sum": px.sum(0, dtype=np.uint64).tolist(), "n": px.shape[0],
                "sumsq": sq.sum(0, dtype=np.uint64).tolist()}
    return out


def _check_files(source, rels, levels, report, max_pixels, num_workers, progress, desc,
                 seen=None):
    """Check `rels` (levels: relpath -> DECODE/STATS, default PROBE); bad files go to `report`;
    returns the good files' results. `seen` (a dict) receives every file's (size, sha256)."""
    index = {r: i for i, r in enumerate(rels)}
    tasks = ((index[r], source.display(r), p, levels.get(r, PROBE))
             for r, p in source.payloads(rels))
    fn = functools.partial(_check_task, int(max_pixels))
    good = {}
    for res in run_tasks(fn, tasks, len(rels), num_workers, progress, desc):
        rel = rels[res["i"]]
        if seen is not None:
            seen[rel] = (res["size"], res["sha"])
        if "reason" in res:
            report.skip(source.display(rel), res["reason"], InvalidImageError)
        else:
            good[rel] = res
            report.notes += [f"{source.display(rel)}: {n}" for n in res.get("notes", [])]
    return good


def _plan(path, strict: bool):
    source, layout, report = read_layout(path, strict, allow_empty=True)
    for split, g in layout.groups.items():
        for cls, files in g.items():
            if not files:
                report.note(f"class {cls!r} has no image files"
                            + ("" if split == "all" else f" in {layout.split_dirs[split]}/"))
    return source, layout, report


def scan(path, quick: bool = False, strict: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
         num_workers: int | None = None, progress: bool | None = None) -> SkipReport:
    """Check every file of a folder or archive (decoding unless `quick`); return the skip report.
    CIFAR batches and IDX files are read and validated whole (any problem is a DataError)."""
    from cnnlab.data.dataset import array_format, load_array_split

    fmt = array_format(path)
    if fmt is not None:
        n = sum(len(load_array_split(path, fmt, s)[1]) for s in ("train", "test"))
        return SkipReport(source=str(path), strict=strict, checked=n)
    source, layout, report = _plan(path, strict)
    rels = sorted(p for g in layout.groups.values() for files in g.values() for p in files)
    _check_files(source, rels, {} if quick else dict.fromkeys(rels, DECODE), report, max_pixels,
                 num_workers, progress, "checking headers" if quick else "decoding")
    return report


def _spread(values) -> dict:
    if not values:
        return {"min": None, "median": None, "max": None}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def dataset_info(path, sample: int | None = 500, seed: int = 0, strict: bool = False,
                 max_pixels: int = DEFAULT_MAX_PIXELS, num_workers: int | None = None,
                 progress: bool | None = None) -> dict:
    """Classes, counts per class and split, size spread, mean/std, duplicates, manifest hash and
    skip report of a data set (folder, archive, CSV, CIFAR batches or IDX files)."""
    from cnnlab.data.dataset import array_format

    fmt = array_format(path)
    if fmt is not None:
        return _array_info(path, fmt, sample, seed)
    source, layout, report = _plan(path, strict)
    rels = sorted(p for g in layout.groups.values() for files in g.values() for p in files)
    stats_split = "train" if "train" in layout.groups else "all"
    pool = sorted(p for files in layout.groups[stats_split].values() for p in files)
    if sample is None or sample >= len(pool):
        chosen = set(pool)
    else:
        rng = np.random.default_rng(seed)
        chosen = {pool[i] for i in rng.choice(len(pool), size=int(sample), replace=False)}
    seen: dict[str, tuple[int, str]] = {}
    good = _check_files(source, rels, dict.fromkeys(chosen, STATS), report, max_pixels,
                        num_workers, progress, "checking images", seen)
    records = _records(source, layout, seen)
    # a single tree is judged against the split cnnlab makes by default (val 0.2, seed 0)
    split_of = None
    if not layout.presplit:
        try:
            spec = make_split(layout)
        except DataError:           # a class too small to split: judge classes only
            spec = None
        if spec is not None:
            assigned = {p: sp for sp, ps in spec.rebased("").files.items() for p in ps}
            split_of = lambda r: assigned.get(r.relpath, "train")    # noqa: E731
    duplicates = find_duplicates(records, split_of)
    note_duplicates(duplicates, report)

    counts = {split: {cls: sum(p in good for p in files) for cls, files in g.items()}
              for split, g in layout.groups.items()}
    stats = [good[p] for p in sorted(chosen) if p in good]
    n_pix = sum(s["n"] for s in stats)
    mean = std = None
    if n_pix:
        s1 = np.sum([s["sum"] for s in stats], axis=0, dtype=np.float64) / 255.0
        s2 = np.sum([s["sumsq"] for s in stats], axis=0, dtype=np.float64) / 255.0 ** 2
        mean = s1 / n_pix
        std = np.sqrt(np.maximum(s2 / n_pix - mean ** 2, 0.0))
    names = {s: (layout.split_dirs.get(s, "") or s) for s in layout.groups}
    return {
        "source": str(source.path),
        "kind": source.kind,
        "root": layout.root,
        "layout": "split folders" if layout.presplit else "single tree",
        "split_folders": {s: names[s] for s in layout.groups} if layout.presplit else {},
        "classes": layout.classes,
        "counts": counts,
        "totals": {s: sum(c.values()) for s, c in counts.items()},
        "width": _spread([g["w"] for g in good.values()]),
        "height": _spread([g["h"] for g in good.values()]),
        "modes": dict(Counter(g["mode"] for g in good.values()).most_common()),
        "formats": dict(Counter(g["format"] for g in good.values()).most_common()),
        "mean": None if mean is None else [round(float(v), 4) for v in mean],
        "std": None if std is None else [round(float(v), 4) for v in std],
        "stats_images": len(stats),
        "stats_split": stats_split,
        "duplicates": duplicate_summary(duplicates),
        "manifest_hash": manifest_digest(layout.classes, records),
        "problems": report.to_dict(),
    }


def _array_info(path, fmt: str, sample: int | None, seed: int) -> dict:
    """dataset_info for CIFAR batches / IDX files: arrays, so no headers to check."""
    from cnnlab.data.dataset import load_array_split
    from cnnlab.data.hygiene import manifest_hash

    arrays = {s: load_array_split(path, fmt, s) for s in ("train", "test")}
    classes = arrays["train"][2]
    records = [FileRecord(s, classes[y], f"{s}/{i}", x.nbytes, content_hash(x.tobytes()))
               for s, (xs, ys, *_) in arrays.items() for i, (x, y) in enumerate(zip(xs, ys))]
    duplicates = find_duplicates(records)
    report = SkipReport(source=str(path), checked=len(records))
    note_duplicates(duplicates, report)
    xs = arrays["train"][0]
    idx = np.arange(len(xs))
    if sample is not None and sample < len(xs):
        idx = np.sort(np.random.default_rng(seed).choice(len(xs), size=int(sample), replace=False))
    s1 = np.zeros(xs.shape[-1], np.float64)
    s2 = np.zeros(xs.shape[-1], np.float64)
    for k in range(0, len(idx), 2048):          # chunks: float64 of all CIFAR would be 1.2 GB
        px = xs[idx[k:k + 2048]].reshape(-1, xs.shape[-1]).astype(np.float64) / 255.0
        s1 += px.sum(0)
        s2 += (px ** 2).sum(0)
    n_px = max(1, len(idx) * xs.shape[1] * xs.shape[2])
    mean = s1 / n_px
    std = np.sqrt(np.maximum(s2 / n_px - mean ** 2, 0.0))
    if xs.shape[-1] == 1:                      # grey: report it as three equal RGB channels
        mean, std = np.repeat(mean, 3), np.repeat(std, 3)
    counts = {s: {c: int(n) for c, n in zip(classes, np.bincount(a[1], minlength=len(classes)))}
              for s, a in arrays.items()}
    h, w = xs.shape[1:3]
    n = sum(len(a[1]) for a in arrays.values())
    return {
        "source": str(path), "kind": fmt, "root": "", "layout": f"{fmt} files (train, test)",
        "split_folders": {}, "classes": classes, "counts": counts,
        "totals": {s: sum(c.values()) for s, c in counts.items()},
        "width": _spread([w]), "height": _spread([h]),
        "modes": {"RGB" if xs.shape[-1] == 3 else "L": n}, "formats": {fmt: n},
        "mean": [round(float(v), 4) for v in mean], "std": [round(float(v), 4) for v in std],
        "stats_images": len(idx), "stats_split": "train",
        "duplicates": duplicate_summary(duplicates), "manifest_hash": manifest_hash(path),
        "problems": report.to_dict(),
    }


def _records(source, layout, seen) -> list[FileRecord]:
    """Manifest records of a layout's image files from the sizes and hashes the workers saw."""
    cut = len(layout.root) + 1 if layout.root else 0
    return [FileRecord(split, cls, p[cut:], *seen.get(p, (-1, "")), source.display(p))
            for split, g in layout.groups.items() for cls, files in g.items() for p in files]


def info_text(info: dict) -> str:
    """The human-readable form of :func:`dataset_info`'s result."""
    where = f" (root {info['root']}/)" if info["root"] else ""
    lines = [f"source    {info['source']} [{info['kind']}]{where}"]
    if info["layout"] == "split folders":
        folders = ", ".join(f"{d}/" for d in info["split_folders"].values())
        lines.append(f"layout    split folders: {folders}")
    elif info["layout"] == "single tree":
        lines.append("layout    single tree: cnnlab splits it per class (val_fraction 0.2, seed 0 "
                     "by default)")
    else:
        lines.append(f"layout    {info['layout']}")
    splits = list(info["counts"])
    head = ["class"] + [info["split_folders"].get(s, s) for s in splits]
    rows = [[c] + [f"{info['counts'][s][c]:,}" for s in splits] for c in info["classes"]]
    rows.append(["total"] + [f"{info['totals'][s]:,}" for s in splits])
    widths = [max(len(r[j]) for r in [head] + rows) for j in range(len(head))]
    lines.append(f"classes   {len(info['classes'])}")
    for r in [head] + rows:
        lines.append("  " + "  ".join(v.ljust(w) if j == 0 else v.rjust(w)
                                      for j, (v, w) in enumerate(zip(r, widths))))
    w, h = info["width"], info["height"]
    if w["min"] is not None:
        lines.append(f"width     min {w['min']}  median {w['median']:g}  max {w['max']}")
        lines.append(f"height    min {h['min']}  median {h['median']:g}  max {h['max']}")
    lines.append("modes     " + ", ".join(f"{m} {n:,}" for m, n in info["modes"].items()))
    lines.append("formats   " + ", ".join(f"{m} {n:,}" for m, n in info["formats"].items()))
    if info["mean"] is not None:
        which = "" if info["stats_split"] == "all" else f" {info['stats_split']}"
        src = f"RGB in [0, 1], {info['stats_images']:,} decoded{which} images"
        lines.append(f"mean      {' '.join(f'{v:.4f}' for v in info['mean'])}  ({src})")
        lines.append(f"std       {' '.join(f'{v:.4f}' for v in info['std'])}")
    dup = info.get("duplicates")
    if dup is not None:
        lines.append(f"duplicates {dup['groups']} group(s) of identical files: "
                     f"{dup['across_classes']} across classes, {dup['across_splits']} across "
                     f"splits")
        for g in dup["list"][:20]:
            lines.append(f"  {', '.join(g['paths'])}  (classes {g['classes']}, splits "
                         f"{g['splits']})")
        if len(dup["list"]) > 20:
            lines.append(f"  ... {len(dup['list']) - 20} more (--json lists all)")
    if info.get("manifest_hash"):
        lines.append(f"manifest  {info['manifest_hash']}")
    lines.append("problems  " + SkipReport.from_dict(info["problems"]).to_text())
    return "\n".join(lines)
