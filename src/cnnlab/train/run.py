"""`train(cfg)`: one training run end to end, as `cnnlab train` does it.

Data and model from the config, optimiser and schedule, a run directory::

    runs/NAME/
      config.yaml          the resolved TrainConfig (reload with --config); header: versions
      environment.json     seed, versions (cnnlab, torch, python, numpy), device, precision, threads
      classes.json         class name -> label index (also in every checkpoint)
      split.json           image folders: the SplitSpec used (a resume reuses it)
      skipped.txt/.json    image folders: files that could not be used, with reasons
      metrics.csv          one row per epoch (also metrics.jsonl)
      curves.png           loss, accuracy and learning rate per epoch, train vs val
      tensorboard/         the same scalars by global step, and every monitor_every steps the
                           monitor's per-layer stats and weight/grad histograms (tensorboard=False:
                           none)
      steps.jsonl          with step_log: each step's loss, lr and sample indices
      last.safetensors     weights after the latest epoch (or the Ctrl-C point, or the latest
                           checkpoint_every step) + last.state.pt
      best.safetensors     weights with the best validation accuracy + best.state.pt (with
                           --ema-decay: the averaged weights, which are the ones validated)
      resumes.jsonl        one line per --resume: where it continued, forced changes, versions
      diagnostics.jsonl    every monitor_every steps: per-layer norms, update ratios, dead ReLUs
      summary.json         final and best metrics, test accuracy/error, confusion matrix, the
                           data manifest hash, and "diagnostics" (monitor flags, curve findings)

Inputs are standardised with the training split's per-channel mean/std (checkpoint meta "mean",
"std", on the [0, 1] pixel scale: x = (pixel / 255 - mean) / std). A loss that turns NaN/inf
stops the run (stop_reason "nonfinite_loss") and leaves the last good checkpoint in place.

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
from cnnlab.config import resolve, save_yaml
from cnnlab.errors import CheckpointMismatchError, ConfigError
from cnnlab.models.layers import init_weights_
from cnnlab.train.batches import Loaders, digits_loaders, folder_loaders
from cnnlab.train.callbacks import (Checkpointer, EarlyStopping, MetricsLogger, ProgressBar,
                                    StepLog, StopOnSignal)
from cnnlab.models.weights import check_state_dict
from cnnlab.train.checkpoint import load_checkpoint, set_rng_state
from cnnlab.train.config import TrainConfig
from cnnlab.train.loop import History, evaluate, fit, resolve_precision, use_channels_last
from cnnlab.train.losses import make_loss
from cnnlab.train.optim import ModelEMA, build_optimizer, build_schedule
from cnnlab.train.plots import CurvePlotter, TensorBoardScalars, tensorboard_writer

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


def build_loaders(cfg: TrainConfig, image_size: int, one_channel_if_grey: bool = True,
                  split_file=None) -> Loaders:
    """The data a TrainConfig names: the embedded digits, or an image folder/archive in memory."""
    if cfg.data in (None, "digits"):
        loaders = digits_loaders(image_size=image_size, batch_size=cfg.batch_size,
                                 val_fraction=cfg.val_fraction, seed=cfg.seed,
                                 shift=cfg.random_shift)
        loaders.train.flip = bool(cfg.hflip) and not cfg.alternate_flip  # a mirrored 2 is no digit
        loaders.train.alternate_flip = bool(cfg.hflip) and cfg.alternate_flip
        return loaders
    if not Path(cfg.data).exists():
        raise ConfigError(f"data {cfg.data!r} does not exist; pass an image folder (one "
                          "sub-folder per class) or a .tar/.tar.gz/.zip of one, or omit --data "
                          "for the embedded digits")
    # flips on by default: natural images are mirror-symmetric in distribution, digits are not
    loaders = folder_loaders(
        cfg.data, image_size, cfg.batch_size, one_channel_if_grey=one_channel_if_grey,
        val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=cfg.seed,
        shift=cfg.random_shift, flip=cfg.hflip is not False and not cfg.alternate_flip,
        split_file=split_file,
        data_overrides={"cache_dir": cfg.data_cache} if cfg.data_cache else None)
    loaders.train.alternate_flip = cfg.hflip is not False and cfg.alternate_flip
    return loaders


def build_model(cfg: TrainConfig, num_classes: int, in_chans: int) -> nn.Module:
    """cfg.model from the zoo with cfg.dropout (if set) passed to its builder, then cfg.init."""
    kwargs = {} if cfg.dropout is None else {"dropout": cfg.dropout}
    try:
        model = cnnlab.create_model(cfg.model, num_classes=num_classes, in_chans=in_chans,
                                    **kwargs)
    except TypeError as e:
        if "dropout" not in str(e):
            raise
        raise ConfigError(f"{cfg.model} has no dropout rate to set; got dropout={cfg.dropout}. "
                          "Drop --dropout, or pick a model with dropout (alexnet, vgg11, "
                          "squeezenet1_1, ...)") from None
    return init_weights_(model, cfg.init)


def data_manifest(cfg: TrainConfig) -> str:
    """What names the data of a run: "digits" for the embedded set, else
    :func:`cnnlab.data.manifest_hash` of the folder/archive (class list, paths, content hashes)."""
    if cfg.data in (None, "digits"):
        return "digits"
    if not Path(cfg.data).exists():
        return "missing"  # build_loaders reports the missing path with what to pass instead
    from cnnlab.data import manifest_hash

    return manifest_hash(cfg.data)


def _check_manifest(run_dir: Path, saved: str | None, now: str | None, force: bool,
                    changes: dict | None) -> dict:
    """A resume on changed data is a ConfigError unless `force` (then a recorded change)."""
    changes = dict(changes or {})
    if saved is None or now is None or saved == now:
        return changes  # an older run without a manifest, or loaders passed in: nothing to say
    if not force:
        raise ConfigError(f"--resume {str(run_dir)!r}: the data changed since the run started "
                          f"(manifest {saved} -> {now}); resume with the data the run used, or "
                          "add --force to continue on this data (recorded as non_exact_resume)")
    changes["data_manifest"] = (saved, now)
    return changes


class OptimizerStepsOnly:
    """Passes `callback` the batch ends that close a gradient-accumulation group, so a per-step
    hook (the diagnostics monitor's update/weight ratio) sees whole optimiser steps."""

    def __init__(self, callback, accumulate: int, batches_per_epoch: int):
        self.callback, self.accumulate, self.n = callback, accumulate, batches_per_epoch

    def on_train_start(self, **kw):
        return self.callback.on_train_start(**kw)

    def on_batch_end(self, batch, **kw):
        if (batch + 1) % self.accumulate == 0 or batch + 1 == self.n:
            return self.callback.on_batch_end(batch=batch, **kw)
        return None

    def on_train_end(self, **kw):
        return self.callback.on_train_end(**kw)


def diagnostics(history: History, monitor, num_classes: int, loss: str) -> dict:
    """summary.json's "diagnostics": the monitor's flags and the learning-curve findings
    (:func:`cnnlab.diagnose.curves.diagnose_history`), each a sentence saying what to try."""
    from cnnlab.diagnose.curves import diagnose_history
    from cnnlab.diagnose.sanity import expected_initial_loss

    found = diagnose_history(history, history.stop_reason,
                             chance_loss=expected_initial_loss(num_classes, loss)
                             if num_classes >= 2 else None)
    return {"monitor_flags": list(monitor.flags) if monitor is not None else None,
            "findings": [f.to_dict() for f in found]}


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


# settings that do not change what a resumed run computes: applied (logging, saving, the cache)
# or ignored (out_dir, name: the run directory is the one resumed)
_RESUME_APPLIED = ("quiet", "data_cache", "tensorboard", "checkpoint_every", "step_log")
_RESUME_FREE = {"out_dir", "name", *_RESUME_APPLIED}


def resume_config(run_dir: str | Path, overrides: dict | None = None, force: bool = False
                  ) -> tuple[TrainConfig, dict]:
    """The saved config of `run_dir` with `overrides`; changes are a ConfigError unless `force`.

    Returns (config, changes) where changes maps each changed key to (saved, new).
    """
    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"cannot resume {str(run_dir)!r}: no config.yaml there; point --resume "
                          "at a run directory written by `cnnlab train` (e.g. runs/NAME)")
    saved = resolve(TrainConfig, path)
    free = {k: v for k, v in (overrides or {}).items()
            if k in _RESUME_APPLIED and v is not None}
    overrides = {k: v for k, v in (overrides or {}).items() if k not in _RESUME_FREE}
    cfg = resolve(TrainConfig, path, overrides)
    changes = {k: (getattr(saved, k), getattr(cfg, k)) for k in overrides
               if getattr(saved, k) != getattr(cfg, k)}
    if changes and not force:
        diff = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changes.items())
        raise ConfigError(f"--resume continues {str(run_dir)!r} with its saved settings, but "
                          f"these differ: {diff}. Drop those flags, or add --force to resume "
                          "anyway (recorded as non_exact_resume: true)")
    return dataclasses.replace(cfg, **free), changes


def _previous_rows(run_dir: Path, epochs: int) -> list[dict]:
    """metrics.jsonl rows of the epochs the checkpoint covers (a later row lost its checkpoint)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("epoch", 0) <= epochs]


def _load_resume_state(run_dir: Path, model: nn.Module, optimizer, scheduler, classes,
                       changed=()) -> dict:
    """Load `last` into model/optimizer/schedule; a corrupt or foreign checkpoint raises.

    A forced change of optimizer or schedule starts that one afresh (its saved state would not fit).
    """
    weights, state = load_checkpoint(run_dir, "last")
    if list(state.get("classes", [])) != list(classes):
        raise CheckpointMismatchError(
            f"{run_dir}/last.state.pt was trained on classes {list(state['classes'])[:5]}... but "
            f"the data now has {list(classes)[:5]}...; resume with the data the run used")
    check_state_dict(model, weights, run_dir / "last.safetensors")  # lists keys; loads nothing
    try:
        model.load_state_dict(weights, strict=True)
        if state.get("optimizer") is not None and "optimizer" not in changed:
            optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise CheckpointMismatchError(
            f"{run_dir}/last.safetensors does not fit the model/optimizer this config builds "
            f"({str(e).splitlines()[0][:200]}); was --model or --optimizer changed?") from None
    if state.get("scheduler") is not None and "schedule" not in changed:
        scheduler.load_state_dict(state["scheduler"])
    return state


def train(cfg: TrainConfig = TrainConfig(), model: nn.Module | None = None,
          loaders: Loaders | None = None, callbacks=(), resume: str | Path | None = None,
          resume_changes: dict | None = None, param_groups: list[dict] | None = None,
          force: bool = False) -> RunResult:
    """Train `cfg.model` (or `model`) on `cfg.data` (or `loaders`); writes the run directory.

    `resume`: a run directory to continue from its `last` checkpoint (model, optimiser, schedule,
    epoch and step, RNG states; the data order follows from (seed, epoch)); get `cfg` from
    :func:`resume_config`, whose `changes` go in `resume_changes`. A resume refuses data whose
    manifest hash (:func:`data_manifest`) differs from the run's unless `force` (RELIABILITY B6).
    `param_groups` (with `model`): optimiser groups with their own 'lr'/'weight_decay' instead
    of the default decay/no-decay split, e.g. from :func:`cnnlab.transfer.prepare`; a resume must
    pass groups built the same way, in the same order.
    With cfg.ema_decay the returned RunResult.model (and the test report) is the weight average.
    """
    if param_groups is not None and model is None:
        raise ConfigError("param_groups refer to a model's parameters; pass that model too")
    device = resolve_device(cfg.device)
    resume = Path(resume) if resume is not None else None
    with _run_settings(cfg, cfg.threads):
        manifest = data_manifest(cfg) if loaders is None else None  # given loaders: unknown
        if loaders is None:
            size = cfg.image_size or getattr(model, "default_input_size", None)
            default_chans = (getattr(model, "in_chans", None) if model is not None
                             else cnnlab.model_info(cfg.model).in_chans)
            split = resume / "split.json" if resume and (resume / "split.json").is_file() else None
            loaders = build_loaders(cfg, size or cnnlab.model_info(cfg.model).input_size,
                                    one_channel_if_grey=default_chans == 1, split_file=split)
        classes = list(loaders.classes)
        sample = next(iter(loaders.train))[0]                        # (N, C, H, W)
        image_size = int(sample.shape[-1])
        if model is None:
            model = build_model(cfg, len(classes), int(sample.shape[1]))
        elif cfg.dropout is not None or cfg.init != "default":
            raise ConfigError("dropout and init apply to models that train() builds from "
                              "cfg.model; for a given model, set them when building it")
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
                                    cfg.nesterov, cfg.decay_bias_and_norm, param_groups)
        scheduler = build_schedule(optimizer, cfg, len(loaders.train))
        ema = ModelEMA(model, cfg.ema_decay) if cfg.ema_decay is not None else None

        state, previous, resumes = None, [], []
        if resume is not None:
            run_dir = resume
            state = _load_resume_state(run_dir, model, optimizer, scheduler, classes,
                                       changed=set(resume_changes or {}))
            if ema is not None and state.get("ema") is not None and "ema_decay" not in (
                    resume_changes or {}):
                ema.load_state_dict(state["ema"])
            elif ema is not None:  # --force turned the EMA on (or changed it): average afresh
                ema = ModelEMA(model, cfg.ema_decay)
            resume_changes = _check_manifest(run_dir, state.get("data_manifest"), manifest,
                                             force, resume_changes)
            if state["epoch"] >= cfg.epochs and not state.get("batch_in_epoch"):
                raise ConfigError(f"{str(run_dir)!r} already ran all {cfg.epochs} epoch(s); to "
                                  f"train longer, pass --epochs N (> {cfg.epochs}) with --force")
            stale = (state.get("early_stopping") or {}).get("bad_epochs", 0)
            if cfg.early_stopping_patience and stale >= cfg.early_stopping_patience:
                raise ConfigError(f"{str(run_dir)!r} already stopped early ({stale} epochs without "
                                  "a val_acc1 gain); to go on, raise early_stopping_patience "
                                  "with --force")
            previous = _previous_rows(run_dir, state["epoch"])
            resumes = list(state.get("resumes", [])) + [{
                "epoch": state["epoch"], "global_step": state["global_step"],
                "batch_in_epoch": state.get("batch_in_epoch", 0),
                "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                "changes": {k: [a, b] for k, (a, b) in (resume_changes or {}).items()},
                "non_exact_resume": bool(resume_changes)}]
        else:
            run_dir = make_run_dir(cfg)
        cfg_saved = dataclasses.replace(cfg, image_size=image_size)
        env = environment(device, precision, cl, cfg)
        save_yaml(cfg_saved, run_dir / "config.yaml",
                  header=f"cnnlab train, resolved config ({time.strftime('%Y-%m-%d %H:%M:%S')})\n"
                  f"cnnlab {env['cnnlab']}, torch {env['torch']}, python {env['python']}, "
                  f"device {env['device']}, seed {cfg.seed}\n"
                  f"rerun: cnnlab train --config {run_dir / 'config.yaml'} --name NEW_NAME")
        if resume is None:
            (run_dir / "environment.json").write_text(json.dumps(env, indent=2) + "\n")
            if loaders.split is not None:
                loaders.split.save(run_dir / "split.json")
            (run_dir / "classes.json").write_text(json.dumps(
                {c: i for i, c in enumerate(classes)}, indent=1, ensure_ascii=False) + "\n")
            if loaders.skipped is not None:
                (run_dir / "skipped.txt").write_text(loaders.skipped.to_text() + "\n")
                (run_dir / "skipped.json").write_text(loaders.skipped.to_json() + "\n")
        else:
            with open(run_dir / "resumes.jsonl", "a") as f:
                f.write(json.dumps({**resumes[-1], "environment": env}) + "\n")
        non_exact = any(r["non_exact_resume"] for r in resumes)

        meta = {"model": getattr(model, "model_name", cfg.model), "input_size": image_size,
                "in_chans": int(sample.shape[1]), "mean": list(loaders.mean),
                "std": list(loaders.std), "class_to_idx": {c: i for i, c in enumerate(classes)}}
        if loaders.split is not None:
            meta["fit"] = "crop"  # cnnlab.data's default: shorter side, then a centre crop
        extra = {"config": dataclasses.asdict(cfg_saved), "environment": env,
                 "data_manifest": manifest}
        if resumes:
            extra.update(resumes=resumes, non_exact_resume=non_exact)
        early = None
        if cfg.early_stopping_patience:
            if loaders.val is None:
                raise ConfigError("early stopping watches val_acc1, but the data has no "
                                  "validation split; set val_fraction > 0 (e.g. --set "
                                  "val_fraction=0.1) or drop early_stopping_patience")
            early = EarlyStopping("val_acc1", cfg.early_stopping_patience)
            if state is not None and state.get("early_stopping") is not None:
                early.load_state_dict(state["early_stopping"])
        ckpt = Checkpointer(run_dir, classes, meta=meta, extra=extra,
                            best=state.get("best") if state else None,
                            every=cfg.checkpoint_every, accumulate=cfg.accumulate,
                            stateful={"early_stopping": early} if early else None)
        if cfg.compile:
            # in place (nn.Module.compile): state_dict keys stay unprefixed, checkpoints unchanged
            model.compile()
        start_epoch, start_step = 0, None
        if state is not None:
            # in the current epoch length: a forced --batch-size change alters it
            start_epoch = state["epoch"]
            start_step = start_epoch * len(loaders.train) + min(
                int(state.get("batch_in_epoch", 0)), len(loaders.train))
        stopper = StopOnSignal()
        hooks = ([stopper] + ([] if cfg.quiet else [ProgressBar()])
                 + [MetricsLogger(run_dir, previous)]
                 + ([early] if early else [])  # before ckpt, so a save holds the epoch's state
                 + [ckpt, CurvePlotter(run_dir, previous)])
        if cfg.step_log:
            hooks.append(StepLog(run_dir, loaders.train, start_step))
        writer = (tensorboard_writer(run_dir / "tensorboard",
                                     purge_step=start_step + 1 if start_step else None)
                  if cfg.tensorboard else None)
        monitor = None
        if cfg.monitor_every:
            from cnnlab.diagnose.monitor import TrainingMonitor

            monitor = TrainingMonitor(run_dir, every=cfg.monitor_every,
                                      tensorboard=writer if writer is not None else False)
            hooks.append(monitor if cfg.accumulate == 1 else
                         OptimizerStepsOnly(monitor, cfg.accumulate, len(loaders.train)))
        if writer is not None:  # after the monitor: it closes the writer the monitor shares
            hooks.append(TensorBoardScalars(writer))
        if state is not None:
            set_rng_state(state["rng"])  # dropout and other global draws continue as saved
        t0 = time.perf_counter()
        with stopper:
            new = fit(model, loaders, optimizer, cfg, hooks + list(callbacks), scheduler,
                      start_epoch=start_epoch, start_step=start_step, ema=ema,
                      epoch_totals=state.get("epoch_totals") if state else None)
        seconds = time.perf_counter() - t0
        history = History(previous + list(new))
        history.stop_reason, history.stop_detail = new.stop_reason, new.stop_detail

        if ema is not None:
            model = ema.module  # the weights validated and kept as `best`
        test = (split_report(model, loaders.test, precision, cl, cfg.loss)
                if loaders.test is not None
                and history.stop_reason not in ("interrupted", "terminated", "nonfinite_loss")
                else None)
        tta = None
        # the test split, else val (train/ + test/ data with val_fraction 0: test/ serves as val)
        tta_split = "test" if loaders.test is not None else "val"
        if cfg.tta != "none" and getattr(loaders, tta_split) is not None \
                and history.stop_reason not in ("interrupted", "terminated", "nonfinite_loss"):
            from cnnlab.evaluate.tta import TTAModel

            tta = {"mode": cfg.tta, "split": tta_split, **split_report(
                TTAModel(model, cfg.tta), getattr(loaders, tta_split), precision, cl, cfg.loss)}
    best = history.best("val_acc1") or history.best("train_acc1")
    summary = {
        "run_dir": str(run_dir), "model": meta["model"], "data": loaders.info,
        "data_manifest": manifest,
        "classes": classes, "epochs": cfg.epochs, "epochs_completed": len(history),
        "stop_reason": history.stop_reason, "seconds": round(seconds, 2),
        "final": history[-1] if history else None,
        "best": {"epoch": best["epoch"], "val_acc1": best.get("val_acc1")} if best else None,
        "test": test, "checkpoints": {t: f"{t}.safetensors" for t in ("last", "best")
                                      if (run_dir / f"{t}.safetensors").exists()},
        "environment": env,
    }
    if tta is not None:
        summary["tta"] = tta
    if history.stop_detail:
        summary["stop_detail"] = history.stop_detail
    summary["diagnostics"] = diagnostics(history, monitor, len(classes), cfg.loss)
    if resumes:
        summary.update(resumes=resumes, non_exact_resume=non_exact)
    if history.stop_reason in ("interrupted", "terminated"):
        summary["signal"] = int(signal.SIGINT if history.stop_reason == "interrupted"
                                else signal.SIGTERM)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return RunResult(run_dir, history, test or {}, summary, model)
