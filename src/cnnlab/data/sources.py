"""What a data path is: a folder tree or an archive (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz, .zip).

:func:`open_source` looks at the path and returns a source with one interface:

- ``list()``: every regular file (path relative to the source, POSIX separators, size) and
  folder, with hidden folders (``.git``, ``.ipynb_checkpoints``, ``__MACOSX``, ...) left out and
  noted. Nothing is decoded yet.
- ``payloads(relpaths)``: the files' contents, for decoding: bytes for archive members (read into
  memory, never extracted to disk), a filesystem path for folders (worker processes read it).
- ``display(relpath)``: how a file is named in reports and errors.

Folders are walked following symbolic links, but each real folder is visited once, so a symlink
loop ends the walk instead of hanging it. Sources are only ever opened for reading.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.data.report import SkipReport
from cnnlab.errors import DataError

# Extensions that are tried as images (case-insensitive); other files in class folders are
# skipped and reported.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif",
                              ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm"})
ARCHIVE_EXTENSIONS = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
# Folders that tools create next to data: never classes, never walked.
HIDDEN_DIRS = frozenset({"__MACOSX", "__pycache__", "@eaDir", "$RECYCLE.BIN",
                         "System Volume Information"})
SYSTEM_FILES = {"thumbs.db": "Windows thumbnail cache", "desktop.ini": "Windows folder settings",
                "ehthumbs.db": "Windows thumbnail cache"}


def is_hidden_dir(name: str) -> bool:
    """Folders that never hold data: dot-folders and tool folders such as __MACOSX."""
    return name.startswith(".") or name in HIDDEN_DIRS


def non_image_reason(relpath: str) -> str | None:
    """Why a file in a class folder is not even tried as an image (None: try to decode it)."""
    name = relpath.rsplit("/", 1)[-1]
    lower = name.lower()
    if lower in SYSTEM_FILES:
        return f"system file ({SYSTEM_FILES[lower]}), not an image"
    if name.startswith("._"):
        return "macOS resource-fork file (._*), not an image"
    if name.startswith("."):
        return "hidden file, not an image"
    if lower.endswith(ARCHIVE_EXTENSIONS) or lower.endswith((".gz", ".7z", ".rar")):
        return "an archive inside the data set; nested archives are not expanded"
    ext = os.path.splitext(lower)[1]
    if ext not in IMAGE_EXTENSIONS:
        return f"not an image file (extension {ext or 'none'!r})"
    return None


@dataclass(frozen=True)
class Entry:
    """One regular file of a source."""

    relpath: str      # relative to the source, "/"-separated
    size: int         # bytes (uncompressed, for archive members)


@dataclass
class Listing:
    """Everything a source holds, before decoding: files, folders and problems found on the way."""

    files: list[Entry] = field(default_factory=list)
    dirs: set[str] = field(default_factory=set)
    report: SkipReport = field(default_factory=SkipReport)


@dataclass(frozen=True)
class Unreadable:
    """Stands in for a payload that could not be read (corrupt archive member, I/O error)."""

    reason: str


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


class FolderSource:
    """An image-folder tree on disk."""

    kind = "folder"

    def __init__(self, path: Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FolderSource({str(self.path)!r})"

    def display(self, relpath: str) -> str:
        return os.path.join(str(self.path), *relpath.split("/")) if relpath else str(self.path)

    def list(self) -> Listing:
        """Walk the tree (following symlinks, each real folder once; hidden folders skipped)."""
        out = Listing(report=SkipReport(source=str(self.path)))
        seen: set[tuple[int, int]] = set()
        stack = [""]
        while stack:
            rel = stack.pop()
            full = self.display(rel)
            try:
                st = os.stat(full)
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    out.report.ignore(full, "folder already visited through another path "
                                            "(symlink loop or duplicate link); walked once")
                    continue
                seen.add(key)
                with os.scandir(full) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as e:
                if not rel:
                    raise DataError(f"cannot read folder {full}: {e.strerror or e}") from None
                out.report.ignore(full, f"folder cannot be read ({e.strerror or e})")
                continue
            if rel:
                out.dirs.add(rel)
            for e in reversed(entries):          # stack pops last-in first: keep name order
                r = _join(rel, e.name)
                try:
                    is_dir = e.is_dir(follow_symlinks=True)
                    is_file = not is_dir and e.is_file(follow_symlinks=True)
                    size = e.stat(follow_symlinks=True).st_size if is_file else 0
                except OSError:
                    is_dir = is_file = False
                if is_dir:
                    if is_hidden_dir(e.name):
                        out.report.ignore(self.display(r), "hidden folder; never a class")
                    else:
                        stack.append(r)
                elif is_file:
                    out.files.append(Entry(r, size))
                else:
                    out.report.skip(self.display(r),
                                    "broken symlink or not a regular file (socket, FIFO, device)")
        out.files.sort(key=lambda f: f.relpath)
        return out

    def payloads(self, relpaths: Iterable[str]) -> Iterator[tuple[str, str | bytes | Unreadable]]:
        """Yield (relpath, filesystem path) in the order given: workers read the files."""
        for r in relpaths:
            yield r, self.display(r)

    def fingerprint(self, relpaths: Iterable[str]) -> str:
        """A hash of the named files' paths, sizes and modification times (cache key)."""
        h = hashlib.sha256(b"folder\0" + os.fsencode(os.path.abspath(self.path)))
        for r in sorted(relpaths):
            try:
                st = os.stat(self.display(r))
                h.update(f"{r}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogatepass"))
            except OSError:
                h.update(f"{r}\0missing\n".encode("utf-8", "surrogatepass"))
        return h.hexdigest()


def open_source(path) -> "FolderSource":
    """Return the source for `path`: a folder tree, or a .tar/.tar.gz/.tgz/.zip archive."""
    from cnnlab.data.archive import ArchiveSource, archive_kind

    if path is None or str(path) == "":
        raise DataError("no data path given; pass a folder with one sub-folder per class "
                        "(or train/ and val/ folders holding them), or a .tar/.tar.gz/.zip archive")
    p = Path(os.path.expanduser(str(path)))
    if p.is_dir():
        return FolderSource(p)
    if p.is_file():
        kind = archive_kind(p)
        if kind is not None:
            return ArchiveSource(p, kind)
        raise DataError(f"{p} is a file but not a .tar, .tar.gz/.tgz or .zip archive; pass a "
                        f"folder with one sub-folder per class, or an archive of such a folder")
    if os.path.lexists(p):
        raise DataError(f"{p} is a broken symlink or not a regular file/folder; point it at the "
                        f"data folder or archive")
    parent = p.parent if str(p.parent) else Path(".")
    hint = ""
    if parent.is_dir():
        stem = p.name[:3].lower()
        near = sorted(q.name for q in parent.iterdir() if q.name.lower().startswith(stem))
        hint = f" Similar names in {parent}: {near[:5]}." if near else ""
    raise DataError(f"data path {p} does not exist.{hint} Pass a folder with one sub-folder per "
                    f"class (or train/ and val/ folders holding them), or a .tar/.tar.gz/.zip "
                    f"archive.")
