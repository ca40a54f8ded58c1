"""Training checkpoints: weights as safetensors plus a training-state file, each written atomically.

A checkpoint TAG (``last``, ``best``) in a run directory is two files::

    TAG.safetensors   the model's state_dict (plain tensors, loadable by any safetensors reader
                      and by ``create_model(name, weights=...)``). Header metadata: "format": "pt",
                      "cnnlab": JSON with format "cnnlab-weights/1", model, classes, mean, std,
                      input_size, in_chans, class_to_idx, fit (image folders), epoch,
                      global_step. Inputs are (pixel / 255 - mean) / std per channel, with
                      the training split's statistics.
    TAG.state.pt      ``torch.save`` of a dict of tensors and primitives only, so it loads with
                      ``torch.load(weights_only=True)`` and no allow-listing:
                        format          "cnnlab-train-state/1"
                        epoch           completed epochs (the next epoch to run)
                        global_step     optimiser steps taken
                        batch_in_epoch  batches of the next epoch already taken (> 0 after Ctrl-C
                                        or a mid-epoch checkpoint_every save)
                        optimizer       optimizer.state_dict() (momentum buffers, Adam moments)
                        scheduler       LRSchedule.state_dict() (step, plateau state) or None
                        rng             torch / cuda / numpy / python generator states
                        classes         the class names in label order
                        weights_sha256  sha256 of the TAG.safetensors written with this state
                        meta            the weights header's fields (model, mean, std, ...)
                        state_sha256    digest of every other entry (tensor bytes included):
                                        torch's zip reader does not notice a flipped bit
                        + whatever the caller adds; `cnnlab train` adds metrics, best
                          ({monitor, value, epoch}), epoch_totals (the running train sums of a
                          part-done epoch), early_stopping ({monitor, best, bad_epochs}) when
                          on, config, environment, and after a resume resumes (one record
                          each) and non_exact_resume (a forced change)
                      Below torch 2.10 (weights.MIN_TORCH_FOR_PICKLE) the state file is refused:
                      that unpickler is exploitable (CVE-2025-32434, CVE-2026-24747).

Each file goes to a temporary name in the same directory, is flushed and fsynced, then
``os.replace``-d over the final name and the directory is fsynced: a crash leaves either the old
or the new file, never a partial one. Two files cannot be swapped in one rename, so a save is a
small journal: (1) the new weights go durably to ``.TAG.safetensors.pending``; (2) TAG.state.pt,
which records their sha256, replaces the old state: this rename is the commit point; (3) the
pending weights are renamed to TAG.safetensors. A kill before (2) leaves the previous pair
intact (the pending file is stale); a kill between (2) and (3) leaves a new state whose weights
are the pending file, which :func:`load_checkpoint` reads and :func:`remove_stale_temps`
renames into place. A weights file that matches no state is "checkpoint corrupt (sha256
mismatch)", never paired with another save's optimiser.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import random
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CheckpointWriteError, InvalidCheckpointError  # noqa: F401 (re-exported)
from cnnlab.models import weights as _weights
from cnnlab.models.weights import sha256_file

WEIGHTS_FORMAT = "cnnlab-weights/1"
STATE_FORMAT = "cnnlab-train-state/1"
_TMP_MARK = ".tmp-"
_PENDING = ".pending"
# what resume and predict read from every state file; anything missing is a clear error
REQUIRED_STATE_KEYS = ("epoch", "global_step", "rng", "weights_sha256")


def _write_temp(path: Path, data: bytes | Callable[[io.BufferedWriter], None]) -> Path:
    """Write `data` to a temp file beside `path`, flushed and fsynced; returns the temp path."""
    tmp = path.with_name(f".{path.name.lstrip('.')}{_TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            if isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
            else:
                data(f)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            need = (f"~{len(data) / 1e6:.1f} MB" if isinstance(data, (bytes, bytearray, memoryview))
                    else "size unknown")
            try:
                free = f"{shutil.disk_usage(path.parent).free / 1e6:.1f} MB free"
            except OSError:
                free = "free space unknown"
            raise CheckpointWriteError(
                f"no space left on device while writing {str(path)!r} (need {need}, {free}); "
                "the previous checkpoint is intact. Free some space or use another "
                "--out-dir") from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(path: str | os.PathLike,
                 data: bytes | Callable[[io.BufferedWriter], None]) -> Path:
    """Write `data` (bytes, or a function that writes a binary file) so a crash leaves old or new.

    Temp file in the destination directory (os.replace is atomic only within one file system),
    flush -> fsync(file) -> os.replace -> fsync(directory). A full disk raises
    CheckpointWriteError and leaves no temp file.
    """
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; its os.replace is durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pending(directory: Path, tag: str) -> Path:
    return directory / f".{tag}.safetensors{_PENDING}"


def remove_stale_temps(directory: str | os.PathLike) -> list[Path]:
    """Clean up after a crash mid-save: delete temp files (``.NAME.tmp-PID``) and stale pending
    weights, and finish a save that crashed after its commit point; returns what was deleted."""
    directory = Path(directory)
    removed = []
    for p in directory.glob(f".*{_TMP_MARK}*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    for p in directory.glob(f".*.safetensors{_PENDING}"):
        tag = p.name[1:-len(f".safetensors{_PENDING}")]
        try:
            committed = load_state_file(directory / f"{tag}.state.pt")["weights_sha256"]
        except InvalidCheckpointError:
            committed = None   # no usable state refers to it
        if committed is not None and sha256_file(p) == committed:
            os.replace(p, directory / f"{tag}.safetensors")   # step (3) of the interrupted save
            _fsync_dir(directory)
        else:
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def rng_state() -> dict:
    """Every global generator's state as tensors and primitives (weights_only-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured; an incomplete state is InvalidCheckpointError."""
    try:
        torch.set_rng_state(state["torch"])
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                             n["has_gauss"], n["cached_gaussian"]))
        p = state["python"]
        random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()),
                         p["gauss_next"]))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        # never resume silently with fresh generators: the run would not be the one saved
        raise InvalidCheckpointError(
            f"the checkpoint's random-generator state is missing or invalid ({type(e).__name__}: "
            f"{e}); an exact resume is impossible. Resume from another checkpoint or start a "
            "new run") from None


def state_digest(state: dict) -> str:
    """sha256 over a state's structure and values (tensor bytes included), `state_sha256` aside."""
    h = hashlib.sha256()

    def feed(v):
        if isinstance(v, torch.Tensor):
            t = v.detach().to("cpu").contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(v, dict):
            h.update(f"{{{len(v)}:".encode())
            for k, x in v.items():
                feed(k)
                feed(x)
        elif isinstance(v, (list, tuple)):
            h.update(f"{type(v).__name__}{len(v)}:".encode())
            for x in v:
                feed(x)
        else:
            h.update(f"{type(v).__name__}:{v!r};".encode())

    feed({k: v for k, v in state.items() if k != "state_sha256"})
    return h.hexdigest()


def plain(value, where: str = "state"):
    """`value` with str/int/float subclasses (TorchVersion, numpy scalars) made builtin.

    torch.load(weights_only=True) refuses any class it does not know, so anything else is
    rejected here, at save time, instead of producing a file that will not load.
    """
    if value is None or type(value) in (bool, int, float, str) or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        return {plain(k, where): plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"{where}: a {type(value).__name__} cannot go into a checkpoint that loads "
                    "with weights_only=True; convert it to tensors or primitives")


def save_checkpoint(directory: str | os.PathLike, tag: str, model: nn.Module, *,
                    optimizer: torch.optim.Optimizer | None = None, scheduler=None,
                    epoch: int = 0, global_step: int = 0, batch_in_epoch: int = 0,
                    classes=(), meta: dict | None = None, extra: dict | None = None) -> Path:
    """Write TAG.safetensors and TAG.state.pt as one atomic save (module docstring); returns the
    weights' path.

    `meta` (JSON-able) goes into the weights header too (model name, mean/std, input size);
    `extra` (tensors/primitives) only into the state file (metrics, best, config).
    """
    from safetensors.torch import save as st_save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # copy=True: safetensors refuses tensors that share storage (tied weights) or are strided
    tensors = {k: v.detach().to("cpu", copy=True).contiguous()
               for k, v in model.state_dict().items()}
    header = {"format": WEIGHTS_FORMAT, "classes": list(classes), "epoch": epoch,
              "global_step": global_step, **(meta or {})}
    blob = st_save(tensors, metadata={"format": "pt", "cnnlab": json.dumps(header)})
    state = {
        "format": STATE_FORMAT, "epoch": epoch, "global_step": global_step,
        "batch_in_epoch": batch_in_epoch,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(), "classes": plain(list(classes)), "meta": plain(dict(meta or {})),
        "weights_sha256": hashlib.sha256(blob).hexdigest(), **plain(dict(extra or {}), "extra"),
    }
    state["state_sha256"] = state_digest(state)
    buf = io.BytesIO()
    torch.save(state, buf)   # in memory first: a full disk then names the size needed
    weights, spath = directory / f"{tag}.safetensors", directory / f"{tag}.state.pt"
    pending = atomic_write(_pending(directory, tag), blob)            # (1) module docstring
    try:
        tmp = _write_temp(spath, buf.getvalue())
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp, spath)                                        # (2) the commit point
    except BaseException:
        if tmp.exists():   # not renamed: the previous state (and weights) stay the checkpoint
            tmp.unlink(missing_ok=True)
            pending.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    os.replace(pending, weights)                                      # (3)
    _fsync_dir(directory)
    return weights


def load_weights_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a TAG.safetensors: (state_dict, cnnlab header); a bad file is InvalidCheckpointError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InvalidCheckpointError(f"weights file {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get("cnnlab", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own SafetensorError and OSError/ValueError
        raise InvalidCheckpointError(f"checkpoint corrupt or not safetensors: {str(path)!r} "
                                     f"({type(e).__name__}: {e})") from None
    return tensors, header


def load_state_file(path: str | os.PathLike) -> dict:
    """Read a TAG.state.pt with weights_only=True (no pickled code); bad: InvalidCheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise InvalidCheckpointError(f"training-state file {str(path)!r} does not exist")
    if _weights._torch_version() < _weights.MIN_TORCH_FOR_PICKLE:
        need = ".".join(map(str, _weights.MIN_TORCH_FOR_PICKLE))
        raise InvalidCheckpointError(
            f"refusing to unpickle {str(path)!r}: torch {torch.__version__} is below {need}, "
            "whose weights-only loader is exploitable (CVE-2025-32434, CVE-2026-24747). Upgrade "
            f"to torch>={need} to resume; the .safetensors weights still load")
    if path.stat().st_size == 0:
        raise InvalidCheckpointError(f"checkpoint corrupt: {str(path)!r} is empty (0 bytes); "
                                     "use the other tag (best/last)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, EOFError, RuntimeError (bad zip) ...
        lines = str(e).splitlines() or [""]
        # weights_only refusals bury the reason ("Unsupported global: ...") mid-message
        why = next((ln.strip() for ln in lines if "unsupported global" in ln.lower()), lines[0])
        raise InvalidCheckpointError(
            f"checkpoint corrupt or not a cnnlab training state: {str(path)!r} "
            f"({type(e).__name__}: {why[:300]}). cnnlab never falls back to unrestricted "
            "unpickling.") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        fmt = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise InvalidCheckpointError(
            f"{str(path)!r} is not a {STATE_FORMAT} file (format: {fmt!r})")
    missing = [k for k in REQUIRED_STATE_KEYS if k not in state]
    if missing:
        raise InvalidCheckpointError(f"checkpoint incomplete: {str(path)!r} lacks "
                                     f"{', '.join(missing)}; use the other tag (best/last)")
    # files from before state_sha256 existed are read as they are
    if "state_sha256" in state and state_digest(state) != state["state_sha256"]:
        raise InvalidCheckpointError(
            f"checkpoint corrupt (sha256 mismatch): the contents of {str(path)!r} changed after "
            "it was saved (disk or copy error). Use the other tag (best/last)")
    return state


def load_checkpoint(directory: str | os.PathLike, tag: str = "last"
                    ) -> tuple[dict[str, torch.Tensor], dict]:
    """Read TAG.safetensors and TAG.state.pt, checking that they were written together."""
    directory = Path(directory)
    state = load_state_file(directory / f"{tag}.state.pt")
    wpath = directory / f"{tag}.safetensors"
    # a save killed after its commit point left its weights in the pending file (docstring)
    for candidate in (wpath, _pending(directory, tag)):
        if candidate.is_file() and sha256_file(candidate) == state["weights_sha256"]:
            weights, _ = load_weights_file(candidate)
            return weights, state
    if not wpath.is_file():
        raise InvalidCheckpointError(f"weights file {str(wpath)!r} does not exist")
    raise InvalidCheckpointError(
        f"checkpoint corrupt (sha256 mismatch): {str(wpath)!r} is not the file saved with "
        f"{tag}.state.pt (a save was interrupted or a file was edited). Use the other tag.")
