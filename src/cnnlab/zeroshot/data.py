"""The CUB-200-2010 zero-shot layout (Welinder et al. 2010, with the Wikipedia articles and class
splits used by Ba et al., ICCV 2015), in a folder or an archive:

    cub200-2010/images/<NNN.Species>/*.jpg     images, one folder per class
    cub200-2010/wikipedia/<NNN.Species>.txt    one article per class (same name as its folder)
    cub200-2010/splits.json                    {"hard": {"seen_class_ids": [...],
                                                         "unseen_class_ids": [...]}, "easy": ...}

Any folder or archive laid out like this works (a test builds a tiny one). Sources, listing and
decoding are cnnlab.data's (:func:`cnnlab.data.sources.open_source`,
:func:`cnnlab.data.decode_image`, :func:`cnnlab.data.fit_image`); this module only knows where
things are. Images are streamed in batches, never all decoded at once (CUB at 224 px would be
0.9 GB of uint8).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.data.decode import decode_image, fit_image
from cnnlab.data.report import SkipReport
from cnnlab.data.sources import Unreadable, non_image_reason, open_source
from cnnlab.errors import ConfigError, DataError, InvalidImageError

_CLASS = re.compile(r"^(\d+)\.(.+)$")     # "001.Black_footed_Albatross"


def pretty_name(folder: str) -> str:
    """"001.Black_footed_Albatross" -> "Black footed Albatross"."""
    m = _CLASS.match(folder)
    return (m.group(2) if m else folder).replace("_", " ")


@dataclass
class CubData:
    """What a CUB-like source holds: classes, their articles and image files, the named splits."""

    source: object
    root: str
    classes: list[str]                                   # folder names, sorted by class id
    class_ids: dict[str, int]
    texts: dict[str, str]                                # class -> article (only classes with one)
    images: dict[str, list[str]]                         # class -> image relpaths (sorted)
    splits: dict[str, dict] = field(default_factory=dict)
    report: SkipReport = field(default_factory=SkipReport)

    def split(self, split) -> tuple[list[str], list[str]]:
        """(seen, unseen) class names of a named split ("hard"), a JSON file or a dict holding
        seen_class_ids / unseen_class_ids. Overlap, unknown ids and classes without text fail."""
        if isinstance(split, str) and split in self.splits:
            spec = self.splits[split]
        elif isinstance(split, (str, Path)) and Path(split).is_file():
            try:
                spec = json.loads(Path(split).read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise ConfigError(f"cannot read split file {split}: {e}") from None
        elif isinstance(split, dict):
            spec = split
        else:
            raise ConfigError(f"unknown split {split!r}; the data names {sorted(self.splits)}, or "
                              f"pass a JSON file with seen_class_ids and unseen_class_ids")
        try:
            seen_ids = [int(i) for i in spec["seen_class_ids"]]
            unseen_ids = [int(i) for i in spec["unseen_class_ids"]]
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"split {split!r} must hold integer lists 'seen_class_ids' and "
                              f"'unseen_class_ids'; got keys {sorted(spec)[:5]}") from None
        overlap = sorted(set(seen_ids) & set(unseen_ids))
        if overlap:
            raise ConfigError(f"split {split!r}: class id(s) {overlap[:10]} are both seen and "
                              f"unseen; a zero-shot split must keep them apart")
        if not seen_ids or not unseen_ids:
            raise ConfigError(f"split {split!r} needs at least one seen and one unseen class; "
                              f"got {len(seen_ids)} seen, {len(unseen_ids)} unseen")
        by_id = {i: c for c, i in self.class_ids.items()}
        unknown = [i for i in seen_ids + unseen_ids if i not in by_id]
        if unknown:
            raise DataError(f"split {split!r} names class id(s) {unknown[:10]} that "
                            f"{self.source.display(self.root)} does not hold (it has ids "
                            f"{min(by_id)}..{max(by_id)})")
        seen, unseen = [by_id[i] for i in seen_ids], [by_id[i] for i in unseen_ids]
        no_text = [c for c in seen + unseen if c not in self.texts]
        if no_text:
            raise DataError(f"class(es) {no_text[:5]} have no article in wikipedia/ (expected "
                            f"wikipedia/<class folder name>.txt, non-empty); every class of the "
                            f"split needs a description")
        return seen, unseen

    def validation_split(self, split, n_classes: int) -> dict:
        """A split of `split`'s seen classes alone: the last `n_classes` by id play unseen (as the
        hard split holds out the last ids). Settings chosen on it never see an unseen class."""
        seen, _ = self.split(split)
        if not 0 < n_classes < len(seen):
            raise ConfigError(f"a validation split needs 1..{len(seen) - 1} of the "
                              f"{len(seen)} seen classes as pseudo-unseen; got {n_classes}")
        ids = sorted(self.class_ids[c] for c in seen)
        return {"seen_class_ids": ids[:-n_classes], "unseen_class_ids": ids[-n_classes:],
                "validation_of": split if isinstance(split, str) else "custom"}


def _read_text(payload, where: str) -> str:
    if isinstance(payload, Unreadable):
        raise DataError(f"cannot read {where}: {payload.reason}")
    data = Path(payload).read_bytes() if isinstance(payload, str) else payload
    return data.decode("utf-8", errors="replace")


def read_cub(path) -> CubData:
    """List a CUB-like folder or archive and read its articles and splits (no image decoding)."""
    source = open_source(path)
    listing = source.list()
    dirs = sorted(listing.dirs, key=lambda d: (d.count("/"), d))
    roots = [d.rpartition("/")[0] for d in dirs if d.rpartition("/")[2] == "images"
             and f"{d.rpartition('/')[0]}/wikipedia".lstrip("/") in listing.dirs]
    if not roots:
        raise DataError(f"{source.display('')} does not look like the CUB zero-shot layout: "
                        f"expected images/<NNN.Species>/*.jpg next to "
                        f"wikipedia/<NNN.Species>.txt (and splits.json), as in "
                        f"cub200-2010-zeroshot.tar.gz")
    root = roots[0]
    pre = f"{root}/" if root else ""
    report = listing.report
    images: dict[str, list[str]] = {}
    text_files: dict[str, str] = {}
    for f in listing.files:
        if not f.relpath.startswith(pre):
            continue
        parts = f.relpath[len(pre):].split("/")
        if parts[0] == "images" and len(parts) >= 3:
            why = non_image_reason(f.relpath) or ("empty file" if f.size == 0 else None)
            if why:
                report.skip(source.display(f.relpath), why)
            else:
                images.setdefault(parts[1], []).append(f.relpath)
        elif parts[0] == "wikipedia" and len(parts) == 2 and parts[1].endswith(".txt"):
            text_files[parts[1][:-4]] = f.relpath
    bad = [c for c in images if not _CLASS.match(c)]
    if bad:
        raise DataError(f"class folder(s) {bad[:5]} under {source.display(pre + 'images')} are not "
                        f"named NNN.Name (a class id, a dot, the name), as CUB's are")
    classes = sorted(images, key=lambda c: int(_CLASS.match(c).group(1)))
    texts: dict[str, str] = {}
    wanted = {rel: c for c, rel in text_files.items()}
    for rel, payload in source.payloads(list(wanted)):
        text = _read_text(payload, source.display(rel))
        if text.strip():
            texts[wanted[rel]] = text
        else:
            report.skip(source.display(rel), "empty article (the class has no text)")
    splits: dict[str, dict] = {}
    split_rel = f"{pre}splits.json"
    if any(f.relpath == split_rel for f in listing.files):
        for _, payload in source.payloads([split_rel]):
            try:
                splits = json.loads(_read_text(payload, source.display(split_rel)))
            except ValueError as e:
                raise DataError(f"{source.display(split_rel)} is not valid JSON: {e}") from None
    return CubData(source, root, classes, {c: int(_CLASS.match(c).group(1)) for c in classes},
                   texts, {c: sorted(images[c]) for c in classes}, splits, report)


def read_description(path, name: str | None = None) -> str:
    """The text of one description file; a missing or empty file is an error naming the class."""
    p = Path(path)
    who = f"class {name!r}: " if name else ""
    if not p.is_file():
        raise DataError(f"{who}description file {p} does not exist; pass a text file describing "
                        f"the class (e.g. its Wikipedia article)")
    text = p.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise DataError(f"{who}description file {p} is empty; write a few sentences about the "
                        f"class's appearance")
    return text


def hold_out(labels, fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of a seeded per-class held-out share of `labels` (at least one per class with
    two or more images): the seen-class test images that the seen-class AUC is measured on."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(fraction * len(idx)))
        k = max(k, 1) if len(idx) > 1 and fraction > 0 else k
        mask[rng.permutation(idx)[:k]] = True
    return mask


def iter_image_batches(data: CubData, rels: list[str], image_size: int, batch_size: int = 64,
                       mode: str = "RGB"):
    """Yield (uint8 (B, C, S, S), positions in `rels`) in source order; undecodable files are
    skipped and recorded in ``data.report``."""
    pos = {r: i for i, r in enumerate(rels)}
    buf, idx = [], []
    for rel, payload in data.source.payloads(rels):
        where = data.source.display(rel)
        try:
            if isinstance(payload, Unreadable):
                raise InvalidImageError(payload.reason)
            px = fit_image(decode_image(payload, mode, name=where), image_size)
        except InvalidImageError as e:
            data.report.skip(where, str(e), InvalidImageError)
            continue
        buf.append(px.transpose(2, 0, 1))                                     # (C, S, S)
        idx.append(pos[rel])
        if len(buf) == batch_size:
            yield np.stack(buf), idx
            buf, idx = [], []
    if buf:
        yield np.stack(buf), idx
