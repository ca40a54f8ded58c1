"""Safe weight loading for the zoo: local files and URLs, .pth/.pt/.safetensors, never running code.

`load_weights(model, source)` reads a state dict (torchvision's layout, a cnnlab checkpoint, or
a DataParallel/DDP/torch.compile one), checks it against the model and loads it. Pickle files go
through ``torch.load(weights_only=True)`` only; safetensors headers are validated before any
tensor is read. Downloads land in a cache with an atomic rename after a sha256 check.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from cnnlab.errors import CheckpointMismatchError, ConfigError, InvalidCheckpointError

# torch.load's weights-only unpickler could still be exploited below 2.10 (CVE-2025-32434 before
# 2.6, CVE-2026-24747 before 2.10), so older torch may read safetensors only.
MIN_TORCH_FOR_PICKLE = (2, 10)
# safetensors' own cap on the JSON header; a larger claim is an attack or corruption.
MAX_SAFETENSORS_HEADER = 100_000_000
# Keys a container may keep its state dict under (torchvision/timm checkpoints, cnnlab's
# train/checkpoint.py and the common tutorial layout), tried in this order.
CONTAINER_KEYS = ("model", "state_dict", "model_state_dict")
# Prefixes that wrappers add to every key: DataParallel/DDP and torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# torchvision's file-name convention, e.g. resnet18-f37072fd.pth: hex after the last "-" is a
# prefix of the file's sha256.
HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[^-]*$")
# How many keys per category an error message lists before "... and N more".
LIST_LIMIT = 8

_ST_DTYPES = {  # safetensors dtype names -> bytes per element
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}


@dataclass
class LoadReport:
    """What `load_weights` did: which tensors came from the file and which did not."""

    source: str
    path: str
    format: str                                  # "safetensors" or "torch"
    sha256: str | None = None                    # verified digest (None when not checked)
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)      # model keys left as initialised
    unexpected: list[str] = field(default_factory=list)   # file keys the model has no place for
    mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    head_kept: list[str] = field(default_factory=list)    # classifier keys kept fresh
    cast: dict[str, str] = field(default_factory=dict)    # key -> "float16->float32"

    @property
    def skipped(self) -> list[str]:
        """File keys that were not loaded (unexpected or of the wrong shape)."""
        return sorted(set(self.unexpected) | set(self.mismatched))

    def to_dict(self) -> dict:
        """JSON-ready form, for run reports."""
        return {
            "source": self.source, "path": self.path, "format": self.format,
            "sha256": self.sha256, "loaded": self.loaded, "missing": self.missing,
            "unexpected": self.unexpected, "skipped": self.skipped,
            "mismatched": {k: [list(a), list(b)] for k, a, b in _triples(self.mismatched)},
            "head_kept": self.head_kept, "cast": self.cast,
        }

    def __str__(self) -> str:
        parts = [f"loaded {len(self.loaded)} tensors from {self.source}"]
        if self.head_kept:
            parts.append(f"kept the new classifier ({', '.join(self.head_kept)})")
        if self.missing:
            parts.append(f"{len(self.missing)} model tensors not in the file")
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} file tensors")
        if self.cast:
            parts.append(f"cast {len(self.cast)} tensors to the model's dtype")
        return "; ".join(parts)


def _triples(mismatched):
    return [(k, a, b) for k, (a, b) in sorted(mismatched.items())]


def default_cache_dir() -> Path:
    """Where downloaded weights go: $CNNLAB_CACHE/weights, else ~/.cache/cnnlab/weights."""
    root = os.environ.get("CNNLAB_CACHE")
    if root:
        return Path(root).expanduser() / "weights"
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "cnnlab" / "weights"


def load_weights(
    model: nn.Module,
    source: str | os.PathLike,
    *,
    strict: bool = True,
    map_location="cpu",
    sha256: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    allow_nonfinite: bool = False,
) -> LoadReport:
    """Load a state dict from a path or URL into `model`, safely; returns a :class:`LoadReport`.

    strict=True: any missing, unexpected or mis-shaped key fails, except when only the
    classifier differs (e.g. 1000-class weights into a 10-class model): then the backbone loads,
    the fresh classifier stays and a warning says so. strict=False loads every tensor that fits.
    """
    path, digest = fetch(source, sha256=sha256, cache_dir=cache_dir, progress=progress)
    state, fmt = read_state_dict(path, map_location=map_location)
    state = unwrap_state_dict(state, path)
    if not allow_nonfinite:
        _check_finite(state, path)
    report = LoadReport(source=str(source), path=str(path), format=fmt, sha256=digest)
    _match_and_load(model, state, report, strict)
    return report


# -- fetching ------------------------------------------------------------------------------


def _normalise_sha(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    s = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{8,64}", s):
        raise ConfigError(
            f"sha256 must be 8 to 64 hex digits (a full digest or its prefix); got {sha256!r}."
        )
    return s


def fetch(
    source: str | os.PathLike,
    *,
    sha256: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> tuple[Path, str | None]:
    """Resolve `source` to a local file (downloading URLs into the cache); returns (path, digest).

    The digest is checked against `sha256`, or for URLs against a hash prefix in the file name.
    """
    sha256 = _normalise_sha(sha256)
    text = os.fspath(source)
    scheme = urllib.parse.urlsplit(text).scheme.lower() if isinstance(text, str) else ""
    if scheme in ("http", "https"):
        return _download(text, sha256, cache_dir, progress)
    if scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(text).path))
        expected = sha256 or _hash_from_name(path.name)
    elif len(scheme) > 1:  # one letter is a Windows drive, not a scheme
        raise ConfigError(
            f"unsupported URL scheme {scheme!r} in {text!r}; use http(s)://, file:// or a "
            "local path."
        )
    else:
        path, expected = Path(text).expanduser(), sha256
    if not path.is_file():
        raise InvalidCheckpointError(
            f"weights file not found: {path}. Check the path, or pass an http(s):// URL."
        )
    if expected is None:
        return path, None
    digest = sha256_file(path)
    if not digest.startswith(expected):
        raise InvalidCheckpointError(
            f"{path} is corrupt or not the expected file (sha256 mismatch): expected "
            f"{expected}..., got {digest}. Download it again or check the hash you passed."
        )
    return path, digest


def _hash_from_name(name: str) -> str | None:
    m = HASH_IN_NAME.search(name)
    return m.group(1) if m else None


def sha256_file(path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (weights and checkpoints alike)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _cache_path(url: str, cache_dir) -> Path:
    name = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "weights"
    # One folder per URL, so two hosts' "model.pth" never serve each other's bytes.
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(cache_dir or default_cache_dir()).expanduser() / key / name


def _download(url: str, sha256, cache_dir, progress) -> tuple[Path, str | None]:
    dest = _cache_path(url, cache_dir)
    expected = sha256 or _hash_from_name(dest.name)
    if dest.is_file():
        # A cached file got there only through a verified atomic rename; an explicit hash is
        # still re-checked so a changed upstream file with a new hash refreshes the cache.
        if sha256 is None:
            return dest, None
        digest = sha256_file(dest)
        if digest.startswith(sha256):
            return dest, digest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            digest, size, total = _stream(url, out, dest.name, progress)
            out.flush()
            os.fsync(out.fileno())
        if total is not None and size != total:
            raise InvalidCheckpointError(
                f"download of {url} stopped after {size} of {total} bytes. Try again."
            )
        if expected is not None and not digest.startswith(expected):
            raise InvalidCheckpointError(
                f"download of {url} is corrupt or was tampered with (sha256 mismatch): expected "
                f"{expected}..., got {digest}. Nothing was cached; try again or check the hash."
            )
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest, digest if expected is not None else None


def _stream(url: str, out, name: str, progress: bool) -> tuple[str, int, int | None]:
    """Copy `url` into the open file `out`; returns (sha256, bytes written, Content-Length)."""
    import http.client

    h, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            bar = _progress_bar(total, name, progress)
            try:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError,
            ValueError) as e:
        raise InvalidCheckpointError(
            f"could not download {url}: {getattr(e, 'reason', None) or e}. Check the URL and "
            "the network, or download the file yourself and pass its path."
        ) from None
    return h.hexdigest(), size, total


def _progress_bar(total, name, enabled):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"downloading {name}", unit="B", unit_scale=True,
                disable=not enabled, leave=False)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open a directory; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading -------------------------------------------------------------------------------


def read_state_dict(path: str | os.PathLike, map_location="cpu") -> tuple[Mapping, str]:
    """Read a .safetensors or torch.save file without executing code; returns (object, format)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(9)
    if path.suffix == ".safetensors" or (len(head) == 9 and head[8:9] == b"{"):
        return _read_safetensors(path, map_location), "safetensors"
    return _read_torch(path, map_location), "torch"


def validate_safetensors(path: str | os.PathLike) -> dict:
    """Check a safetensors header (bounds, dtypes, offsets, duplicates); returns the entries."""
    path = Path(path)
    size = path.stat().st_size

    def bad(why: str) -> InvalidCheckpointError:
        return InvalidCheckpointError(f"{path} is not a valid safetensors file: {why}.")

    if size < 8:
        raise bad(f"{size} bytes is shorter than the 8-byte header length")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > MAX_SAFETENSORS_HEADER:
            raise bad(f"header claims {n} bytes, over the {MAX_SAFETENSORS_HEADER} limit")
        if 8 + n > size:
            raise bad(f"header claims {n} bytes but the file has {size - 8} after the length")
        raw = f.read(n)

    def no_duplicates(pairs):
        seen: set[str] = set()
        dup = sorted({k for k, _ in pairs if k in seen or seen.add(k)})
        if dup:
            raise bad(f"duplicate keys in the header: {', '.join(dup[:LIST_LIMIT])}")
        return dict(pairs)

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"the header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise bad("__metadata__ must map strings to strings")
    spans = []
    for key, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"entry {key!r} needs exactly dtype, shape and data_offsets")
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _ST_DTYPES:
            raise bad(f"entry {key!r} has unknown dtype {dtype!r}")
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise bad(f"entry {key!r} has an invalid shape {shape!r}")
        if not (isinstance(offs, list) and len(offs) == 2
                and all(type(o) is int and o >= 0 for o in offs) and offs[0] <= offs[1]):
            raise bad(f"entry {key!r} has invalid data_offsets {offs!r}")
        if offs[1] - offs[0] != math.prod(shape) * _ST_DTYPES[dtype]:
            raise bad(f"entry {key!r}: data_offsets span {offs[1] - offs[0]} bytes but "
                      f"{dtype}{shape} needs {math.prod(shape) * _ST_DTYPES[dtype]}")
        spans.append((offs[0], offs[1], key))
    # The data must be covered exactly once, in order: no overlaps, holes or trailing bytes
    # (trailing bytes are how polyglot files hide a second payload).
    end = 0
    for begin, stop, key in sorted(spans):
        if begin != end:
            raise bad(f"entry {key!r} starts at byte {begin}, expected {end} "
                      "(overlapping or non-contiguous tensors)")
        end = stop
    if 8 + n + end != size:
        raise bad(f"tensor data ends at byte {8 + n + end} but the file has {size} bytes "
                  "(truncated, or trailing bytes)")
    return header


def _read_safetensors(path: Path, map_location) -> dict:
    validate_safetensors(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    device = str(map_location) if isinstance(map_location, (str, torch.device)) else "cpu"
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise InvalidCheckpointError(f"{path} is not a valid safetensors file: {e}.") from None


def _torch_version() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", torch.__version__)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _read_torch(path: Path, map_location):
    if _torch_version() < MIN_TORCH_FOR_PICKLE:
        need = ".".join(map(str, MIN_TORCH_FOR_PICKLE))
        raise InvalidCheckpointError(
            f"refusing to unpickle {path}: torch {torch.__version__} is below {need}, whose "
            "weights-only loader is exploitable (CVE-2025-32434, CVE-2026-24747). Upgrade to "
            f"torch>={need}, or convert the file to .safetensors on a trusted machine."
        )
    if path.stat().st_size == 0:
        raise InvalidCheckpointError(f"{path} is empty (0 bytes); download or export it again.")
    # mmap keeps peak memory near one copy of the weights; only the zip format supports it.
    mmap = zipfile.is_zipfile(path)
    try:
        # weights_only=True is explicit, so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot override it.
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as e:  # noqa: BLE001 - every failure of an untrusted file is the same error
        msg = str(e)
        found = re.search(r"GLOBAL ([\w.]+)", msg)  # the weights-only unpickler names it so
        if found:
            raise InvalidCheckpointError(
                f"{path} asks for the global {found.group(1)} (code, not data) while "
                "unpickling; cnnlab loads weights without running code from the file, so it "
                "refuses. If you trust the file, re-save its state_dict (plain tensors) or "
                "convert it to .safetensors."
            ) from None
        first = msg.strip().splitlines()[0].split(". ")[0][:160] if msg.strip() else "no detail"
        raise InvalidCheckpointError(
            f"{path} is corrupt, truncated or not a weights file ({type(e).__name__}: {first}). "
            "Download or export it again."
        ) from None


def unwrap_state_dict(obj, path: str | os.PathLike = "<weights>") -> dict[str, torch.Tensor]:
    """Find the state dict inside a checkpoint container and strip wrapper prefixes."""
    for _ in range(3):  # e.g. {"model": {"state_dict": ...}}
        if not isinstance(obj, Mapping) or _looks_like_state_dict(obj):
            break
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise InvalidCheckpointError(
            f"{path} holds a {type(obj).__name__}, not a state dict. Save model.state_dict() "
            "rather than the model object."
        )
    state = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not state:
        keys = ", ".join(map(str, list(obj)[:LIST_LIMIT]))
        raise InvalidCheckpointError(
            f"{path} contains no tensors (top-level keys: {keys or 'none'}); expected a state "
            f"dict, or a checkpoint holding one under {' or '.join(map(repr, CONTAINER_KEYS))}."
        )
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def _looks_like_state_dict(obj: Mapping) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _check_finite(state: Mapping[str, torch.Tensor], path) -> None:
    bad = [k for k, v in state.items()
           if v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all())]
    if bad:
        raise InvalidCheckpointError(
            f"{path} has NaN or Inf values in {len(bad)} tensor(s): {_short(bad)}. Pass "
            "allow_nonfinite=True (--allow-nonfinite) to load it anyway."
        )


# -- matching ------------------------------------------------------------------------------


def _short(keys, limit: int = LIST_LIMIT) -> str:
    keys = list(keys)
    more = f", ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def classifier_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the model's classifier, found through its `reset_classifier`."""
    from cnnlab.models.shapes import meta_copy

    before = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    num = getattr(model, "num_classes", None)
    if callable(getattr(model, "reset_classifier", None)) and isinstance(num, int):
        try:
            # Resizing a weightless (meta) copy's classifier shows which keys are the head.
            probe = meta_copy(model)
            probe.reset_classifier(num + 1)
            after = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
            keys = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
            if keys:
                return keys
        except Exception:  # noqa: BLE001 - fall back to the structural guess below
            pass
    # Fallback: the last Linear, or a last 1x1 conv producing the class scores (SqueezeNet).
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) or (
            isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.out_channels == num
        ):
            last = name
    if last is None:
        return set()
    return {k for k in before if k.rsplit(".", 1)[0] == last}


def _compare(model: nn.Module, state: dict, report: LoadReport) -> dict:
    """Fill `report` with the keys and shapes in which `state` differs from `model`'s own."""
    own = model.state_dict()
    report.missing = [k for k in own if k not in state]
    report.unexpected = [k for k in state if k not in own]
    report.mismatched = {
        k: (tuple(v.shape), tuple(own[k].shape))
        for k, v in state.items() if k in own and v.shape != own[k].shape
    }
    return own


def check_state_dict(model: nn.Module, state: dict, path) -> None:
    """Raise CheckpointMismatchError listing every differing key, before anything is loaded.

    For resuming, where even a classifier mismatch means another run: no head leniency, and the
    model is left untouched (load_state_dict(strict=True) copies what fits before it raises).
    """
    report = LoadReport(source=str(path), path=str(path), format="safetensors")
    _compare(model, state, report)
    if report.missing or report.unexpected or report.mismatched:
        raise CheckpointMismatchError(_mismatch_message(model, report))


def _match_and_load(model: nn.Module, state: dict, report: LoadReport, strict: bool) -> None:
    own = _compare(model, state, report)
    problems = set(report.missing) | set(report.unexpected) | set(report.mismatched)
    head = classifier_keys(model) if problems else set()
    # Lenient only when every difference lies inside the classifier: a class-count change, or
    # backbone-only weights. Anything else means another architecture.
    head_only = bool(problems) and problems <= head
    if problems and strict and not head_only:
        raise CheckpointMismatchError(_mismatch_message(model, report))
    fits = {k: v for k, v in state.items() if k in own and k not in report.mismatched}
    if not fits:
        raise CheckpointMismatchError(_mismatch_message(
            model, report, f"none of the {len(state)} tensors in {report.path} fit"))
    for k, v in fits.items():
        target = own[k].dtype
        if v.is_floating_point() and target.is_floating_point and v.dtype != target:
            report.cast[k] = f"{_dtype_name(v.dtype)}->{_dtype_name(target)}"
            fits[k] = v.to(target)
    model.load_state_dict(fits, strict=False)
    report.loaded = list(fits)
    if head_only:
        report.head_kept = sorted(k for k in head if k in own)
    if problems:
        name = getattr(model, "model_name", type(model).__name__)
        if head_only:
            shapes = [f"{k} {list(a)} -> {list(b)}" for k, a, b in _triples(report.mismatched)]
            detail = f" ({_short(shapes, 4)})" if shapes else ""
            warnings.warn(
                f"{name}: loaded the backbone from {report.source} but kept the freshly "
                f"initialised classifier, whose shape or presence differs{detail}; train it "
                "before use.", stacklevel=3,
            )
        else:
            warnings.warn(
                f"{name}: strict=False loaded {len(fits)} of {len(own)} tensors from "
                f"{report.source}; {len(report.missing)} stay as initialised "
                f"({_short(report.missing, 4)}) and {len(report.skipped)} file tensors were "
                "skipped. See the LoadReport.", stacklevel=3,
            )


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _mismatch_message(model: nn.Module, report: LoadReport, lead: str = "") -> str:
    name = getattr(model, "model_name", type(model).__name__)
    lines = [f"{lead or f'{report.path} does not fit'} {name}:"]
    if report.missing:
        lines.append(f"missing {len(report.missing)} ({_short(report.missing)})")
    if report.unexpected:
        lines.append(f"unexpected {len(report.unexpected)} ({_short(report.unexpected)})")
    if report.mismatched:
        shapes = [f"{k}: file {list(a)} vs model {list(b)}"
                  for k, a, b in _triples(report.mismatched)]
        lines.append(f"wrong shape {len(shapes)} ({_short(shapes)})")
    lines.append("Check that the file is for this architecture, or pass strict=False "
                 "(--partial) to load only the tensors that fit.")
    return " ".join(lines[:1]) + " " + "; ".join(lines[1:-1]) + ". " + lines[-1]
