"""The skip report: every file a data set run did not use, with the reason: nothing passes silently.

Three kinds of entries:

- ``skipped``: files inside class folders that are not usable images (zero-byte, truncated,
  corrupt, non-image, hidden/system files such as ``.DS_Store`` and ``Thumbs.db``, decompression
  bombs, unsafe or link members of an archive). They count as bad; past ``max_bad_fraction`` of
  the files checked the run stops, since that usually means a wrong path or a broken copy.
- ``ignored``: things that are not meant to be data and are not counted as bad: hidden folders
  (``.git``, ``.ipynb_checkpoints``, ``__MACOSX``), files outside any class folder (a README),
  folders next to ``train/``/``val/`` that are not split folders.
- ``notes``: facts worth knowing that change nothing: multi-frame files (frame 0 used), class
  folder names that differ only by case or Unicode normalisation.

With ``strict=True`` the first skip raises instead (``--strict`` on the command line).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from cnnlab.errors import DataError


@dataclass(frozen=True)
class Skip:
    """One file that was left out, and why."""

    path: str
    reason: str


@dataclass
class SkipReport:
    """Skipped and ignored files plus notes for one data source (see the module docstring)."""

    source: str = ""
    strict: bool = False
    checked: int = 0                                   # files in class folders that were examined
    skipped: list[Skip] = field(default_factory=list)
    ignored: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, path: str, reason: str, error: type[Exception] = DataError) -> None:
        """Record a bad file; in strict mode raise `error` for it instead."""
        if self.strict:
            raise error(f"{path}: {reason}. Strict mode stops at the first bad file; without "
                        f"--strict it would be skipped and listed in the report.")
        self.skipped.append(Skip(path, reason))

    def ignore(self, path: str, reason: str) -> None:
        """Record something that is not data (hidden folder, stray file); never an error."""
        self.ignored.append(Skip(path, reason))

    def note(self, text: str) -> None:
        """Record a remark that changes nothing (e.g. a multi-frame file)."""
        self.notes.append(text)

    def __len__(self) -> int:
        return len(self.skipped)

    @property
    def bad_fraction(self) -> float:
        """Skipped files over files checked (0 when nothing was checked)."""
        return len(self.skipped) / self.checked if self.checked else 0.0

    def check_fraction(self, max_bad_fraction: float | None) -> None:
        """Raise DataError when more than `max_bad_fraction` of the checked files were skipped."""
        if max_bad_fraction is None or self.bad_fraction <= max_bad_fraction:
            return
        first = "; ".join(f"{s.path}: {s.reason}" for s in self.skipped[:3])
        raise DataError(
            f"{len(self.skipped)} of {self.checked} files in {self.source or 'the data set'} are "
            f"unusable ({self.bad_fraction:.0%}, over the allowed {max_bad_fraction:.0%}); first: "
            f"{first}. Check the path, run `cnnlab data scan` for the full list, or raise "
            f"max_bad_fraction.")

    def extend(self, other: "SkipReport") -> None:
        """Append another report's entries (e.g. listing problems, then decoding problems)."""
        self.checked += other.checked
        self.skipped += other.skipped
        self.ignored += other.ignored
        self.notes += other.notes

    def to_dict(self) -> dict:
        """A JSON-ready dict: counts plus every entry."""
        return {
            "source": self.source,
            "checked": self.checked,
            "skipped_count": len(self.skipped),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "ignored": [{"path": s.path, "reason": s.reason} for s in self.ignored],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SkipReport":
        """Inverse of :meth:`to_dict` (used by the on-disk cache)."""
        return cls(source=d.get("source", ""), checked=int(d.get("checked", 0)),
                   skipped=[Skip(s["path"], s["reason"]) for s in d.get("skipped", [])],
                   ignored=[Skip(s["path"], s["reason"]) for s in d.get("ignored", [])],
                   notes=list(d.get("notes", [])))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_text(self) -> str:
        """Human-readable: every skipped file with its reason, then ignored items, then notes."""
        lines = [f"skipped {len(self.skipped)} of {self.checked} files"
                 + (f" ({self.bad_fraction:.1%})" if self.checked else "")
                 + (f" in {self.source}" if self.source else "")]
        lines += [f"  {s.path}: {s.reason}" for s in self.skipped]
        if self.ignored:
            lines.append(f"ignored {len(self.ignored)} item(s) that are not data:")
            lines += [f"  {s.path}: {s.reason}" for s in self.ignored]
        if self.notes:
            lines.append("notes:")
            lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)
