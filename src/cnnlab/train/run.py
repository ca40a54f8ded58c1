"""`train(cfg)`: one training run end to end, as `cnnlab train` does it.

Data and model from the config, optimiser and schedule, a run directory::

    runs/NAME/
      config.yaml          the resolved TrainConfig (reload with --config); header: versions
      environment.json     seed, versions (cnnlab, torch, python, numpy), device, precision, threads
      metrics.csv          one row per epoch (also metrics.jsonl)
      last.safetensors     weights after the latest epoch (or the Ctrl-C point) + last.state.pt
      best.safetensors     weights with the best validation accuracy + best.state.pt
      summary.json         final and best metrics, test accuracy/error, confusion matrix

then :func:`cnnlab.train.loop.fit` with the progress, logging and checkpoint hooks, and a final
evaluation on the test split.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

import cnnlab
from cnnlab.config import save_yaml
from cnnlab.errors import ConfigError
from cnnlab.train.batches import Loaders, digits_loaders
from cnnlab.train.callbacks import Checkpointer, MetricsLogger, ProgressBar, StopOnSignal
from cnnlab.train.config import TrainConfig
from cnnlab.train.loop import History, evaluate, fit, resolve_precision, use_channels_last
from cnnlab.train.losses import make_loss
from cnnlab.train.optim import build_optimizer, build_schedule

# Below this many multiply-adds per image, extra intra-op threads cost more than they gain.
# Measured on 2 shared cores, LeNet-5 (0.42 M MACs), batch 64: 1 thread ~3,500 img/s, torch's
# default 2 threads 160-550 img/s (OpenMP barriers stall when the cores are busy elsewhere).
SMALL_MODEL_MACS = 5_000_000


@dataclass
class RunResult:
    """What a run produced: its directory, per-epoch history, test metrics and the summary."""

    run_dir: Path
    history: History
    test: dict
    summary: dict
    model: nn.Module = field(repr=False)


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda when available, else cpu; an unavailable device is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but no CUDA device is available; "
                          "use --device cpu (or auto)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} requested but MPS is not available; use --device cpu")
    return dev


def macs_per_image(model: nn.Module, sample: torch.Tensor) -> int:
    """Multiply-adds of the conv and linear layers for one image (a quick count, for threads)."""
    total = 0

    def count(m, inputs, out):
        nonlocal total
        total += out[0].numel() * m.weight[0].numel()  # each output: one dot product of a filter

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(sample[:1])
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


def environment(device: torch.device, precision: str, channels_last: bool,
                cfg: TrainConfig) -> dict:
    """Versions and hardware to save beside every result."""
    env = {"cnnlab": cnnlab.__version__, "torch": str(torch.__version__),  # not TorchVersion
           "python": platform.python_version(), "numpy": np.__version__,
           "platform": platform.platform(), "device": str(device), "precision": precision,
           "channels_last": channels_last, "threads": torch.get_num_threads(),
           "seed": cfg.seed, "deterministic": cfg.deterministic}
    if device.type == "cpu":
        env["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    elif device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
    return env


def make_run_dir(cfg: TrainConfig) -> Path:
    """RUN = out_dir/name; a default name is MODEL-YYYYmmdd-HHMMSS (suffixed -2, -3 if taken)."""
    out = Path(cfg.out_dir)
    if cfg.name is not None:
        run_dir = out / cfg.name
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ConfigError(f"run directory {str(run_dir)!r} already exists and is not empty; "
                              "choose another --name (or omit it for a dated one)")
    else:
        base = f"{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir, i = out / base, 1
        while run_dir.exists():
            i += 1
            run_dir = out / f"{base}-{i}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create run directory {str(run_dir)!r}: {e.strerror}; "
                          "check --out-dir") from None
    return run_dir


def build_loaders(cfg: TrainConfig, image_size: int) -> Loaders:
    """The data a TrainConfig names (this slice: the embedded digits only)."""
    if cfg.data not in (None, "digits"):
        raise ConfigError(f"data {cfg.data!r}: this version of `cnnlab train` trains on the "
                          "embedded digits only; omit --data (image folders come in a later "
                          "release)")
    return digits_loaders(image_size=image_size, batch_size=cfg.batch_size,
                          val_fraction=cfg.val_fraction, seed=cfg.seed, shift=cfg.random_shift)


def split_report(model: nn.Module, batches, precision: str = "32", channels_last: bool = False,
                loss_name: str = "ce") -> dict:
    """Loss, top-1/top-5 accuracy and error, and the confusion matrix on a held-out split."""
    out = evaluate(model, batches, precision=precision, channels_last=channels_last,
                   loss_fn=make_loss(loss_name), confusion=True)
    for k in (1, 5):
        if f"acc{k}" in out:
            out[f"error{k}"] = 1 - out[f"acc{k}"]
    return out


@contextlib.contextmanager
def _run_settings(cfg: TrainConfig, threads: int | None):
    """Seeds, determinism and threads for the run; the previous global settings come back after."""
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_threads = torch.get_num_threads()
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    torch.manual_seed(cfg.seed)
    try:
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        if threads is not None:
            torch.set_num_threads(threads)
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def train(cfg: TrainConfig = TrainConfig(), model: nn.Module | None = None,
          loaders: Loaders | None = None, callbacks=()) -> RunResult:
    """Train `cfg.model` (or `model`) on `cfg.data` (or `loaders`); writes the run directory."""
    device = resolve_device(cfg.device)
    with _run_settings(cfg, cfg.threads):
        if loaders is None:
            size = cfg.image_size or getattr(model, "default_input_size", None)
            loaders = build_loaders(cfg, size or cnnlab.model_info(cfg.model).input_size)
        classes = list(loaders.classes)
        sample = next(iter(loaders.train))[0]                        # (N, C, H, W)
        image_size = int(sample.shape[-1])
        if model is None:
            model = cnnlab.create_model(cfg.model, num_classes=len(classes),
                                        in_chans=sample.shape[1])
        elif getattr(model, "num_classes", len(classes)) != len(classes):
            raise ConfigError(f"the model has {model.num_classes} outputs but the data has "
                              f"{len(classes)} classes; call "
                              f"model.reset_classifier({len(classes)})")
        model.to(device)
        if cfg.threads is None and device.type == "cpu" \
                and macs_per_image(model, sample.to(device)) < SMALL_MODEL_MACS:
            torch.set_num_threads(1)  # restored by _run_settings on the way out
        precision = resolve_precision(cfg.precision, device)
        cl = use_channels_last(cfg.channels_last, model)
        optimizer = build_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum,
                                    cfg.nesterov, cfg.decay_bias_and_norm)
        scheduler = build_schedule(optimizer, cfg, len(loaders.train))

        run_dir = make_run_dir(cfg)
        cfg_saved = dataclasses.replace(cfg, image_size=image_size)
        env = environment(device, precision, cl, cfg)
        save_yaml(cfg_saved, run_dir / "config.yaml",
                  header=f"cnnlab train, resolved config ({time.strftime('%Y-%m-%d %H:%M:%S')})\n"
                  f"cnnlab {env['cnnlab']}, torch {env['torch']}, python {env['python']}, "
                  f"device {env['device']}, seed {cfg.seed}\n"
                  f"rerun: cnnlab train --config {run_dir / 'config.yaml'} --name NEW_NAME")
        (run_dir / "environment.json").write_text(json.dumps(env, indent=2) + "\n")

        meta = {"model": getattr(model, "model_name", cfg.model), "input_size": image_size,
                "in_chans": int(sample.shape[1]), "mean": list(loaders.mean),
                "std": list(loaders.std)}
        ckpt = Checkpointer(run_dir, classes, meta=meta,
                            extra={"config": dataclasses.asdict(cfg_saved), "environment": env})
        stopper = StopOnSignal()
        hooks = [stopper] + ([] if cfg.quiet else [ProgressBar()]) + [MetricsLogger(run_dir), ckpt]
        t0 = time.perf_counter()
        with stopper:
            history = fit(model, loaders, optimizer, cfg, hooks + list(callbacks), scheduler)
        seconds = time.perf_counter() - t0

        test = (split_report(model, loaders.test, precision, cl, cfg.loss)
                if loaders.test is not None
                and history.stop_reason not in ("interrupted", "terminated") else None)
    best = history.best("val_acc1") or history.best("train_acc1")
    summary = {
        "run_dir": str(run_dir), "model": meta["model"], "data": loaders.info,
        "classes": classes, "epochs": cfg.epochs, "epochs_completed": len(history),
        "stop_reason": history.stop_reason, "seconds": round(seconds, 2),
        "final": history[-1] if history else None,
        "best": {"epoch": best["epoch"], "val_acc1": best.get("val_acc1")} if best else None,
        "test": test, "checkpoints": {t: f"{t}.safetensors" for t in ("last", "best")
                                      if (run_dir / f"{t}.safetensors").exists()},
        "environment": env,
    }
    if history.stop_reason in ("interrupted", "terminated"):
        summary["signal"] = int(signal.SIGINT if history.stop_reason == "interrupted"
                                else signal.SIGTERM)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return RunResult(run_dir, history, test or {}, summary, model)
