"""Image-folder trees inside .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz and .zip archives, read in place.

Members are read into memory one at a time and decoded from there: nothing is extracted, so an
archive can never write anywhere, whatever its member names say. Still, hostile members are not
even read (each is skipped and listed in the report):

- names that are absolute (``/etc/x``, ``C:\\x``) or climb out with ``..``;
- symbolic and hard links, devices, FIFOs (tar): only regular files are data;
- a member larger than ``max_member_bytes`` (256 MiB: no training image is that big), or a zip
  member that inflates more than 100 times to over 16 MiB (a zip-bomb pattern; images barely
  compress);
- nested archives are skipped like any other non-image file, never expanded.

An archive with more than ``max_members`` members (5 million) is refused outright: that bounds the
memory of the listing. A .tar.gz has no index, so it is read front to back: once to list it and
once per pass over the data, each pass decompressing the stream sequentially.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from cnnlab.data.report import SkipReport
from cnnlab.data.sources import Entry, Listing, Unreadable, is_hidden_dir
from cnnlab.errors import DataError

MAX_MEMBER_BYTES = 256 * 2**20
MAX_MEMBERS = 5_000_000
# Zip-bomb pattern: inflating > 100x (CWE-409 guidance) to something big. JPEG/PNG hardly compress,
# so real images never trip it; a 16 MiB floor keeps flat synthetic BMPs usable.
ZIP_RATIO_LIMIT = 100
ZIP_RATIO_MIN_BYTES = 16 * 2**20

_LISTINGS: dict[tuple, Listing] = {}     # loading train then val lists a .tar.gz once, not twice
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_DRIVE = re.compile(r"^[A-Za-z]:")


def archive_kind(path: Path) -> str | None:
    """'zip', 'tar' or None, by extension first and then by content (magic bytes)."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    try:
        if zipfile.is_zipfile(path):
            return "zip"
        if tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        return None
    return None


def safe_member_name(name: str) -> str | None:
    """The member's path as clean "a/b/c", or None if it is absolute or climbs out with '..'."""
    name = name.replace("\\", "/")      # zips written on Windows sometimes use backslashes
    if name.startswith("/") or _DRIVE.match(name):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)


class ArchiveSource:
    """A .tar(.gz/.bz2/.xz) or .zip archive of an image-folder tree (see the module docstring)."""

    def __init__(self, path: Path, kind: str, max_member_bytes: int = MAX_MEMBER_BYTES,
                 max_members: int = MAX_MEMBERS):
        if kind not in ("tar", "zip"):
            raise DataError(f"unknown archive kind {kind!r}; expected 'tar' or 'zip'")
        self.path, self.kind = Path(path), kind
        self.max_member_bytes, self.max_members = max_member_bytes, max_members

    def __repr__(self) -> str:
        return f"ArchiveSource({str(self.path)!r}, {self.kind!r})"

    def display(self, relpath: str) -> str:
        return f"{self.path}:{relpath}" if relpath else str(self.path)

    def _unreadable(self, e: Exception) -> DataError:
        return DataError(f"cannot read archive {self.path}: {type(e).__name__}: {e}. Check that "
                         f"the download or copy is complete (e.g. `tar -tzf` / `unzip -t`).")

    # -- listing --------------------------------------------------------------------------------
    def _admit(self, out: Listing, raw_name: str, kind: str, size: int, hidden: set[str],
               compressed: int | None = None) -> None:
        """Sort one member into files, dirs, ignored (hidden) or skipped (unsafe/oversized)."""
        shown = self.display(raw_name)
        name = safe_member_name(raw_name)
        if name is None:
            out.report.skip(shown, "unsafe member path (absolute or '..'); not read")
            return
        if not name:
            return
        parts = name.split("/")
        for i, part in enumerate(parts[:-1] if kind != "dir" else parts):
            if is_hidden_dir(part):
                top = "/".join(parts[:i + 1])
                if top not in hidden:
                    hidden.add(top)
                    out.report.ignore(self.display(top), "hidden folder; never a class")
                return
        for i in range(1, len(parts)):                  # parents, even if the archive lists none
            out.dirs.add("/".join(parts[:i]))
        if kind == "dir":
            out.dirs.add(name)
        elif kind == "file":
            if size > self.max_member_bytes:
                out.report.skip(shown, f"member is {size:,} bytes, over the "
                                       f"{self.max_member_bytes:,}-byte cap per file; not read")
            elif (compressed is not None and size > ZIP_RATIO_MIN_BYTES
                  and size > ZIP_RATIO_LIMIT * max(compressed, 1)):
                out.report.skip(shown, f"member inflates {size / max(compressed, 1):.0f}x to "
                                       f"{size:,} bytes (zip-bomb pattern); not read")
            else:
                out.files.append(Entry(name, size))
        else:
            out.report.skip(shown, f"{kind} member; only regular files are read from archives")

    def list(self) -> Listing:
        """Read the member table (a full sequential pass for compressed tars; memoised per process
        while the file's size and modification time stay the same)."""
        st = os.stat(self.path)
        key = (os.path.abspath(self.path), st.st_size, st.st_mtime_ns, self.max_member_bytes,
               self.max_members)
        if key not in _LISTINGS:
            if len(_LISTINGS) >= 4:
                _LISTINGS.pop(next(iter(_LISTINGS)))
            _LISTINGS[key] = self._list()
        memo = _LISTINGS[key]        # entries are frozen: copying the containers is enough
        r = memo.report
        return Listing(list(memo.files), set(memo.dirs),
                       SkipReport(r.source, r.strict, r.checked, list(r.skipped), list(r.ignored),
                                  list(r.notes)))

    def _list(self) -> Listing:
        out = Listing(report=SkipReport(source=str(self.path)))
        hidden: set[str] = set()
        count = 0
        try:
            if self.kind == "zip":
                with zipfile.ZipFile(self.path) as zf:
                    infos = zf.infolist()
                    if len(infos) > self.max_members:
                        raise self._too_many(len(infos))
                    for info in infos:
                        kind = "dir" if info.is_dir() else _zip_kind(info)
                        self._admit(out, info.filename, kind, info.file_size, hidden,
                                    compressed=info.compress_size)
            else:
                with tarfile.open(self.path, mode="r|*") as tf:
                    for m in tf:
                        count += 1
                        if count > self.max_members:
                            raise self._too_many(count)
                        self._admit(out, m.name, _tar_kind(m), m.size, hidden)
        except DataError:
            raise
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError,
                ValueError) as e:
            raise self._unreadable(e) from None
        names = [f.relpath for f in out.files]
        if len(set(names)) != len(names):
            seen, unique = set(), []
            for f in out.files:
                if f.relpath in seen:
                    out.report.note(f"{self.display(f.relpath)}: stored twice in the archive; "
                                    f"the first copy is used")
                else:
                    seen.add(f.relpath)
                    unique.append(f)
            out.files = unique
        out.files.sort(key=lambda f: f.relpath)
        return out

    def _too_many(self, n: int) -> DataError:
        return DataError(f"{self.path} has over {self.max_members:,} members ({n:,} so far); "
                         f"refusing to list it (a zip-bomb pattern). Extract it yourself if you "
                         f"trust it.")

    # -- reading --------------------------------------------------------------------------------
    def payloads(self, relpaths: Iterable[str]) -> Iterator[tuple[str, bytes | Unreadable]]:
        """Yield (relpath, member bytes) for the wanted members, in archive order for tars."""
        wanted = set(relpaths)
        cap = self.max_member_bytes
        if self.kind == "zip":
            yield from self._zip_payloads(wanted, cap)
            return
        done: set[str] = set()
        try:
            with tarfile.open(self.path, mode="r|*") as tf:
                for m in tf:
                    name = safe_member_name(m.name)
                    if name not in wanted or name in done or not m.isfile() or m.size > cap:
                        continue
                    done.add(name)
                    f = tf.extractfile(m)
                    yield name, (f.read(cap + 1) if f is not None else Unreadable("unreadable"))
                    if len(done) == len(wanted):
                        break         # the rest of a .tar.gz need not be decompressed
        except (tarfile.TarError, zlib.error, EOFError, OSError) as e:
            reason = f"archive is truncated or corrupt here ({type(e).__name__}: {e})"
            for name in sorted(wanted - done):
                done.add(name)
                yield name, Unreadable(reason)
        for name in sorted(wanted - done):
            yield name, Unreadable("member not found on a second read of the archive (changed?)")

    def _zip_payloads(self, wanted: set[str], cap: int):
        try:
            zf = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as e:
            raise self._unreadable(e) from None
        with zf:
            by_name = {}
            for info in zf.infolist():
                name = safe_member_name(info.filename)
                if name in wanted and name not in by_name and not info.is_dir():
                    by_name[name] = info
            for name in sorted(wanted):
                info = by_name.get(name)
                if info is None:
                    yield name, Unreadable("member not found on a second read of the archive")
                    continue
                try:
                    with zf.open(info) as f:
                        data = f.read(cap + 1)
                except RuntimeError as e:              # encrypted member
                    yield name, Unreadable(f"cannot read member ({e})")
                    continue
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
                    yield name, Unreadable(f"corrupt archive member ({type(e).__name__}: {e})")
                    continue
                yield name, data if len(data) <= cap else Unreadable("member larger than declared")

    def fingerprint(self, relpaths: Iterable[str]) -> str:
        """A hash of the archive's bytes plus the chosen members (cache key)."""
        h = hashlib.sha256(b"archive\0")
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        for r in sorted(relpaths):
            h.update(r.encode("utf-8", "surrogatepass") + b"\n")
        return h.hexdigest()


def _tar_kind(m: tarfile.TarInfo) -> str:
    if m.isdir():
        return "dir"
    if m.isfile():
        return "file"
    if m.issym():
        return "symbolic link"
    if m.islnk():
        return "hard link"
    if m.isfifo():                # before isdev(), which counts FIFOs as devices too
        return "FIFO"
    if m.isdev():
        return "device"
    return "special"


def _zip_kind(info: zipfile.ZipInfo) -> str:
    # Unix mode bits in the high 16 bits of external_attr: 0o120000 marks a symlink, which zip
    # tools restore as a link; we read such members as nothing at all.
    fmt = (info.external_attr >> 16) & 0o170000
    if fmt == 0o120000:
        return "symbolic link"
    if fmt not in (0, 0o100000):
        return "special"
    return "file"
