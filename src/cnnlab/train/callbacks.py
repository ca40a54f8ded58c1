"""Small training hooks: progress bar, metric files, checkpoints, early stopping, signal handling,
a per-step log.

Each is a plain object with event-named methods (see :mod:`cnnlab.train.loop` for the events and
their keyword arguments). They keep their own state and answer the loop through return values
(truthy: stop), never by reaching into it.
"""

from __future__ import annotations

import csv
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

from cnnlab.train.checkpoint import remove_stale_temps, save_checkpoint


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


class ProgressBar:
    """A tqdm bar over all training images: loss, accuracy, images/s (the rate) and ETA."""

    def __init__(self, file=None):
        self.file = file if file is not None else sys.stderr
        self.bar = None

    def on_train_start(self, epochs, steps_per_epoch, start_epoch=0, **_):
        from tqdm import tqdm

        self.epochs = epochs
        self.bar = tqdm(total=(epochs - start_epoch) * steps_per_epoch, unit="batch",
                        file=self.file, dynamic_ncols=True, leave=False)
        self.loss = self.correct = self.n = 0

    def on_epoch_start(self, epoch, **_):
        self.bar.set_description(f"epoch {epoch + 1}/{self.epochs}")
        self.loss = self.correct = self.n = 0
        self.t0 = time.perf_counter()

    def on_batch_end(self, loss, correct, size, **_):
        self.loss, self.correct = self.loss + loss * size, self.correct + correct
        self.n += size
        img_s = self.n / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"loss {self.loss / self.n:.4f} acc {_pct(self.correct / self.n)} "
                                 f"{img_s:.0f} img/s", refresh=False)
        self.bar.update(1)

    def on_epoch_end(self, metrics, **_):
        m = metrics
        val = (f"  val loss {m['val_loss']:.4f} acc {_pct(m.get('val_acc1'))}"
               if "val_loss" in m else "")
        self.bar.write(f"epoch {m['epoch']:>3}/{self.epochs}  train loss {m['train_loss']:.4f} "
                       f"acc {_pct(m['train_acc1'])}{val}  lr {m['lr']:.3g}  "
                       f"{m['images_per_s']:.0f} img/s", file=self.file)

    def on_train_end(self, **_):
        if self.bar is not None:
            self.bar.close()


class MetricsLogger:
    """Appends one row per epoch to RUN/metrics.csv and RUN/metrics.jsonl (flushed every epoch)."""

    def __init__(self, run_dir: str | Path, previous: list[dict] | None = None):
        self.csv_path = Path(run_dir) / "metrics.csv"
        self.jsonl_path = Path(run_dir) / "metrics.jsonl"
        self.columns: list[str] | None = None
        if previous:  # resuming: rewrite the files with the rows up to the checkpoint
            self.columns = list(previous[0])
            with open(self.csv_path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(self.columns)
                w.writerows([r.get(c, "") for c in self.columns] for r in previous)
            self.jsonl_path.write_text("".join(json.dumps(r) + "\n" for r in previous))

    def on_epoch_end(self, metrics, **_):
        if self.columns is None:
            self.columns = list(metrics)
            with open(self.csv_path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        with open(self.csv_path, "a", newline="") as f:
            csv.writer(f).writerow([metrics.get(c, "") for c in self.columns])
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps(metrics) + "\n")


class Checkpointer:
    """Saves `last` after every epoch (and when training stops mid-epoch), `best` on a new best.

    `monitor` is a metrics key, higher is better (val_acc1), falling back to train_acc1 when
    there is no validation set. `meta`/`extra` are passed to :func:`save_checkpoint`.
    With an EMA of the weights (the loop's `ema`), its state goes into every state file's
    "ema" (a resume continues it), and `best` holds the averaged weights, the ones validated.
    `every` > 0 also saves `last` after every `every`-th step mid-epoch (on a gradient-
    accumulation boundary, `accumulate`), with the batch position for an exact resume.
    `stateful` maps a state-file key to a hook whose ``state_dict()`` is saved with every
    checkpoint (e.g. "early_stopping"); list such hooks before this one so that an epoch's
    save holds their state after that epoch.
    """

    def __init__(self, run_dir: str | Path, classes=(), monitor: str = "val_acc1",
                 meta: dict | None = None, extra: dict | None = None, best: dict | None = None,
                 every: int = 0, accumulate: int = 1, stateful: dict | None = None):
        self.run_dir = Path(run_dir)
        self.classes, self.monitor = list(classes), monitor
        self.meta, self.extra = dict(meta or {}), dict(extra or {})
        best = best or {}   # a resumed run continues the saved {"value", "epoch"}
        self.best_value: float | None = best.get("value")
        self.best_epoch: int | None = best.get("epoch")
        self.every, self.accumulate = every, accumulate
        self.stateful = dict(stateful or {})
        self.batches_per_epoch: int | None = None
        self.metrics: dict = {}   # the last completed epoch's row, saved by mid-epoch saves
        self.saved_step: int | None = None
        self.interrupted_save: Path | None = None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.run_dir)

    def _save(self, tag, model, optimizer, scheduler, epoch, step, batch_in_epoch, metrics,
              ema=None, totals=None):
        best = {"monitor": self.monitor, "value": self.best_value, "epoch": self.best_epoch}
        extra = {**self.extra, "metrics": metrics, "best": best,
                 "epoch_totals": totals if batch_in_epoch else None,  # fit's epoch_totals
                 **{key: hook.state_dict() for key, hook in self.stateful.items()}}
        if ema is not None:
            extra["ema"] = ema.state_dict()
            if tag == "best":
                model = ema.module
        return save_checkpoint(self.run_dir, tag, model, optimizer=optimizer, scheduler=scheduler,
                               epoch=epoch, global_step=step, batch_in_epoch=batch_in_epoch,
                               classes=self.classes, meta=self.meta, extra=extra)

    def on_train_start(self, steps_per_epoch, **_):
        self.batches_per_epoch = steps_per_epoch

    def on_batch_end(self, epoch, step, batch, model, optimizer, scheduler=None, ema=None,
                     totals=None, **_):
        # the epoch's last batch is left to on_epoch_end, which saves it as a whole epoch
        if (not self.every or step % self.every or (batch + 1) % self.accumulate
                or batch + 1 == self.batches_per_epoch):
            return
        self._save("last", model, optimizer, scheduler, epoch, step, batch + 1, self.metrics, ema,
                   totals)
        self.saved_step = step

    def on_epoch_end(self, epoch, step, metrics, model, optimizer, scheduler=None, ema=None,
                     **_):
        self.metrics = metrics
        value = metrics.get(self.monitor, metrics.get("train_acc1"))
        improved = value is not None and math.isfinite(value) and (
            self.best_value is None or value > self.best_value)
        if improved:
            self.best_value, self.best_epoch = value, metrics["epoch"]
        self._save("last", model, optimizer, scheduler, epoch + 1, step, 0, metrics, ema)
        if improved:
            self._save("best", model, optimizer, scheduler, epoch + 1, step, 0, metrics, ema)
        self.saved_step = step

    def on_train_end(self, epoch, step, batch_in_epoch, history, model, optimizer,
                     scheduler=None, ema=None, totals=None, **_):
        if history.stop_reason == "nonfinite_loss":
            return  # the weights led to a NaN/inf loss: keep the last good checkpoint
        if step != self.saved_step:  # stopped mid-epoch (Ctrl-C, SIGTERM, a callback)
            metrics = history[-1] if history else {}
            self.interrupted_save = self._save("last", model, optimizer, scheduler, epoch, step,
                                               batch_in_epoch, metrics, ema, totals)
            self.saved_step = step


class EarlyStopping:
    """Stops when `monitor` (higher is better) has not improved for `patience` epochs.

    Its state (best value, epochs since) goes into checkpoints through the Checkpointer's
    `stateful`, so a resumed run stops at the epoch an uninterrupted one would.
    """

    def __init__(self, monitor: str = "val_acc1", patience: int = 5, min_delta: float = 0.0):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.best: float | None = None
        self.bad_epochs = 0

    def on_epoch_end(self, metrics, **_):
        value = metrics.get(self.monitor)
        if value is None:
            return None
        if self.best is None or value > self.best + self.min_delta:
            self.best, self.bad_epochs = value, 0
            return None
        self.bad_epochs += 1
        return "early_stopping" if self.stopped else None

    @property
    def stopped(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"monitor": self.monitor, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs = state["best"], int(state["bad_epochs"])


class StepLog:
    """One JSON line per batch in RUN/steps.jsonl: step, epoch, batch, loss, lr and the batch's
    sample indices (`batches.batch_indices`), to audit an exact resume or find a loss spike.

    Each line is flushed at once, so a killed run keeps every step it logged. `resume_step`:
    lines after it (steps the checkpoint does not cover) are dropped, so a resumed run's file
    reads like an uninterrupted one's.
    """

    def __init__(self, run_dir: str | Path, batches=None, resume_step: int | None = None):
        self.path = Path(run_dir) / "steps.jsonl"
        self.batches, self.file = batches, None
        if resume_step is not None and self.path.is_file():
            kept = []
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by the kill
                    continue
                if row["step"] <= resume_step:
                    kept.append(line + "\n")
            self.path.write_text("".join(kept))

    def on_train_start(self, **_):
        self.file = open(self.path, "a")

    def on_batch_end(self, epoch, step, batch, loss, lr, **_):
        idx = getattr(self.batches, "batch_indices", None)
        self.file.write(json.dumps({"step": step, "epoch": epoch, "batch": batch, "loss": loss,
                                    "lr": lr, "indices": None if idx is None else idx.tolist()})
                        + "\n")
        self.file.flush()

    def on_train_end(self, **_):
        if self.file is not None:
            self.file.close()


class StopOnSignal:
    """Turns SIGINT/SIGTERM into a clean stop after the current batch (a second one aborts at once).

    Install with ``with StopOnSignal() as stopper: fit(..., callbacks=[stopper, ...])``. Outside
    the main thread (where Python allows no handlers) it does nothing.
    """

    def __init__(self, signals=(signal.SIGINT, signal.SIGTERM)):
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.received is not None:  # second signal: stop now, whatever we are doing
            raise KeyboardInterrupt
        self.received = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
        return False

    def on_batch_end(self, **_):
        if self.received is not None:
            return "interrupted" if self.received == signal.SIGINT else "terminated"
        return None

    def on_epoch_end(self, **_):
        return self.on_batch_end()
