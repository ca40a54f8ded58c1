"""Disk cache of decoded splits: memory-mapped .npy files, so the second run skips decoding.

The key hashes the source's content (an archive's bytes; a folder's file names, sizes and
modification times), the files of the split, every setting that changes pixels (size, fit, mode,
background, pixel limit) and the Pillow version. Any change gives a new entry; stale entries are
never reused. An entry is a folder ``<cache_dir>/<key>/`` holding ``images.npy`` (N, C, S, S) uint8,
``ok.npy`` (which files decoded) and ``meta.json`` (the files skipped while decoding, with
reasons, so a cached run reports them exactly as the first one did). It is written to a temporary
folder inside ``cache_dir`` and renamed into place, so a crash never leaves a half entry. Nothing is
written outside ``cache_dir``. Cached images are mapped copy-on-write: pages load lazily, and
writing to the tensor never touches the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from cnnlab.data.report import SkipReport
from cnnlab.errors import DataError, InvalidImageError

CACHE_FORMAT = 1


def cache_key(source, rels: list[str], cfg) -> str:
    """A hex digest naming one decoded split (see the module docstring for what goes in)."""
    import PIL

    settings = {"format": CACHE_FORMAT, "pillow": PIL.__version__, "size": int(cfg.image_size),
                "mode": cfg.mode, "fit": cfg.fit, "background": list(cfg.background),
                "max_pixels": int(cfg.max_pixels), "files": hashlib.sha256(
                    "\n".join(rels).encode("utf-8", "surrogatepass")).hexdigest(),
                "source": source.fingerprint(rels)}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:40]


def _load(entry: Path, n: int):
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    images = np.load(entry / "images.npy", mmap_mode="c")     # copy-on-write: writable, lazy
    ok = np.load(entry / "ok.npy")
    if meta.get("format") != CACHE_FORMAT or ok.shape != (n,) or images.shape[0] != int(ok.sum()):
        raise ValueError("cache entry does not match its files")
    return images, ok, meta


def cached_decode(source, rels: list[str], cfg, report: SkipReport, split: str, compute):
    """Return (images, ok, report) from the cache, or run `compute()` and store its result."""
    root = Path(os.path.expanduser(str(cfg.cache_dir)))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create cache folder {root}: {e.strerror or e}; pick another "
                        f"cache_dir or turn the cache off") from None
    entry = root / cache_key(source, rels, cfg)
    if (entry / "meta.json").is_file():
        try:
            images, ok, meta = _load(entry, len(rels))
        except (OSError, ValueError, KeyError) as e:
            report.note(f"cache entry {entry} unreadable ({e}); decoding again")
            shutil.rmtree(entry, ignore_errors=True)      # inside cache_dir: ours to replace
        else:
            for s in meta["skipped"]:
                report.skip(s["path"], s["reason"], InvalidImageError)
            report.notes += meta["notes"]
            report.note(f"decoded {split} images read from cache {entry}")
            return images, ok, report

    n_skipped, n_notes = len(report.skipped), len(report.notes)
    images, ok = compute()
    meta = {"format": CACHE_FORMAT, "split": split, "source": str(source.path),
            "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped[n_skipped:]],
            "notes": report.notes[n_notes:]}
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))    # same folder: rename is atomic
    try:
        np.save(tmp / "images.npy", np.ascontiguousarray(images))
        np.save(tmp / "ok.npy", ok)
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        try:
            os.replace(tmp, entry)
        except OSError:
            pass            # another run stored the same entry first: theirs is as good
    except OSError as e:
        report.note(f"could not write the cache entry in {root} ({e.strerror or e}); continuing")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return images, ok, report

