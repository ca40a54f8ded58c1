"""The training loop: one short function, `fit`, plus `evaluate`; everything else plugs in as hooks.

Callbacks are plain objects with any of these methods, all called with keyword arguments (so a
method takes what it needs and ``**_`` for the rest). A truthy return value asks the loop to stop;
a string return value becomes ``History.stop_reason``.

    on_train_start(model, optimizer, scheduler, ema, epochs, steps_per_epoch, start_epoch)
    on_epoch_start(epoch, model, optimizer, scheduler, ema)
    on_batch_end(epoch, step, batch, loss, correct, size, lr, totals, model, optimizer,
                 scheduler, ema)
    on_epoch_end(epoch, step, metrics, history, model, optimizer, scheduler, ema)
    on_train_end(epoch, step, batch_in_epoch, totals, history, model, optimizer, scheduler, ema)

`epoch` and `batch` are 0-based indices; `step` counts batches trained so far (optimiser steps
unless cfg.accumulate > 1: then gradients of `accumulate` batches are summed before each step,
and a stop request waits for the end of the group so no half-accumulated step is lost);
`metrics["epoch"]` is 1-based (epochs completed). `totals` holds the current epoch's running
sums so far ({"images", "loss_sum", "correct"}): a mid-epoch checkpoint saves them, and a resume
passes them back as `epoch_totals`, so that epoch's train_loss/train_acc1 match an unbroken run.

A loss that is NaN or infinite stops training before that batch's update, with stop_reason
"nonfinite_loss" and ``History.stop_detail`` saying where; the weights stay the last finite ones.
"""

from __future__ import annotations

import contextlib
import math
import time

import torch
from torch import nn

from cnnlab.errors import DataError
from cnnlab.evaluate.metrics import confusion_matrix, topk_correct
from cnnlab.train.losses import l1_penalty, make_loss
from cnnlab.train.optim import penalised_weights


class History(list):
    """One metrics dict per completed epoch, plus why training stopped (None: ran all epochs)."""

    stop_reason: str | None = None
    stop_detail: str | None = None  # a sentence for the user when training stopped on a fault

    def best(self, key: str = "val_acc1", mode: str = "max") -> dict | None:
        """The epoch's metrics with the best `key` (None if no epoch has it)."""
        rows = [r for r in self if r.get(key) is not None]
        pick = max if mode == "max" else min
        return pick(rows, key=lambda r: r[key]) if rows else None


class Hooks:
    """Calls an event method on every callback that has it; returns the first truthy answer."""

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks)

    def call(self, event: str, **kwargs):
        stop = None
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if fn is not None:
                answer = fn(**kwargs)
                stop = stop or answer
        return stop


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast is native and fast here: CUDA with bf16, or a CPU with AVX-512."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    # AVX2-only CPUs emulate bf16 matmuls and run slower than fp32; AVX512(-BF16/AMX) gains
    if "AVX512" not in torch.backends.cpu.get_cpu_capability():
        return False
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.ones(2, 2) @ torch.ones(2, 2)
    except RuntimeError:
        return False
    return True


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" -> "bf16" where :func:`bf16_supported`, else "32"; explicit values pass through."""
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "32"
    return precision


def autocast(precision: str, device: torch.device):
    """A context manager: bf16 autocast for "bf16", nothing otherwise (weights stay fp32)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def use_channels_last(setting: bool | None, model: nn.Module) -> bool:
    """None (auto) -> channels_last for models with 2-D convolutions."""
    if setting is not None:
        return setting
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


@torch.no_grad()
def evaluate(model: nn.Module, batches, *, precision: str = "32", channels_last: bool = False,
             loss_fn=None, ks=(1, 5), prefix: str = "", confusion: bool = False) -> dict:
    """Mean loss and top-k accuracy of `model` over `batches` (ILSVRC's top-1/top-5 protocol).

    Keys: loss, acc1, acc5 (only with more than 5 classes), images, and with `confusion` the
    (C, C) confusion matrix as nested lists; each prefixed with ``prefix_`` if given.
    """
    if batches is None:
        return {}
    model.eval()
    device = next(model.parameters()).device
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    loss_fn = loss_fn or make_loss("ce")
    n, loss_sum, correct, cm = 0, 0.0, {}, None
    for x, y in batches:
        x, y = x.to(device, memory_format=fmt), y.to(device)
        with autocast(precision, device):
            scores = model(x)
        scores = scores.float()
        ks_here = [k for k in ks if k <= scores.shape[1]]  # no top-5 with fewer than 5 classes
        loss_sum += loss_fn(scores, y).item() * len(y)
        for k, c in topk_correct(scores, y, ks_here).items():
            correct[k] = correct.get(k, 0) + c
        if confusion:
            part = confusion_matrix(scores.argmax(1).cpu(), y.cpu(), scores.shape[1])
            cm = part if cm is None else cm + part
        n += len(y)
    out = {"loss": loss_sum / max(n, 1), **{f"acc{k}": c / max(n, 1) for k, c in correct.items()}}
    if confusion:
        out.update(images=n, confusion_matrix=cm.tolist() if cm is not None else [])
    return {f"{prefix}_{k}" if prefix else k: v for k, v in out.items()}


def fit(model: nn.Module, loaders, optimizer: torch.optim.Optimizer, cfg, callbacks=(),
        scheduler=None, start_epoch: int = 0, start_step: int | None = None,
        ema=None, epoch_totals: dict | None = None) -> History:
    """Mini-batch SGD with backpropagation (LeCun et al. 1998) for cfg.epochs; hooks do the rest.

    Also: cfg.l1 (L1 penalty on weights), cfg.clip_grad_norm, cfg.accumulate (see above).
    `ema` (a :class:`cnnlab.train.optim.ModelEMA`) is updated after every optimiser step and
    is what the validation metrics measure; hooks receive it as `ema`.
    `start_step` (default: start_epoch whole epochs) is set when resuming mid-epoch; the
    batches of that epoch already taken are skipped (``loaders.train.skip_batches``), and
    `epoch_totals` (the `totals` saved with them) continue that epoch's train metrics.
    """
    if len(loaders.train) == 0:
        raise DataError("the training set yields no batches; check the data or lower --batch-size")
    hooks, history = Hooks(callbacks), History()
    loss_fn = make_loss(cfg.loss, cfg.label_smoothing)
    device = next(model.parameters()).device
    precision = resolve_precision(cfg.precision, device)
    cl = use_channels_last(cfg.channels_last, model)
    fmt = torch.channels_last if cl else torch.contiguous_format
    model.to(memory_format=fmt)
    ctx = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "ema": ema}
    accumulate, n_batches = getattr(cfg, "accumulate", 1), len(loaders.train)
    weights = penalised_weights(model) if cfg.l1 else []
    step = start_epoch * len(loaders.train) if start_step is None else start_step
    epoch, done, stop = start_epoch, step - start_epoch * len(loaders.train), None
    n, loss_sum, correct_sum = 0, 0.0, 0
    hooks.call("on_train_start", epochs=cfg.epochs, steps_per_epoch=len(loaders.train),
               start_epoch=start_epoch, **ctx)
    try:
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            if hasattr(loaders.train, "set_epoch"):
                loaders.train.set_epoch(epoch)
            if done and hasattr(loaders.train, "skip_batches"):  # resumed mid-epoch
                loaders.train.skip_batches(done)
            hooks.call("on_epoch_start", epoch=epoch, **ctx)
            t0, n, loss_sum, correct_sum = time.perf_counter(), 0, 0.0, 0
            if done and epoch_totals:  # resumed mid-epoch: the batches before count too
                n, loss_sum, correct_sum = (int(epoch_totals["images"]),
                                            float(epoch_totals["loss_sum"]),
                                            int(epoch_totals["correct"]))
            n0 = n  # images/s counts this process's images only
            lr = optimizer.param_groups[0]["lr"]
            for batch, (x, y) in enumerate(loaders.train, start=done):
                x, y = x.to(device, memory_format=fmt), y.to(device)
                with autocast(precision, device):
                    scores = model(x)
                loss = loss_fn(scores.float(), y)  # the loss in fp32 even under bf16 autocast
                loss_value = loss.item()
                if not math.isfinite(loss_value):  # before the update: the weights stay finite
                    history.stop_detail = (f"the loss became {loss_value} at epoch {epoch + 1}, "
                                           f"batch {batch + 1} (step {step + 1})")
                    stop = "nonfinite_loss"
                    break
                if cfg.l1:  # logged losses stay the data term, comparable with val_loss
                    loss = loss + cfg.l1 * l1_penalty(weights)
                # each batch's share of the group's mean loss; the epoch's last group may be short
                group = min(accumulate, n_batches - batch // accumulate * accumulate)
                if batch % accumulate == 0:  # a group's first batch; hooks still see the grads
                    optimizer.zero_grad(set_to_none=True)
                (loss / group).backward()
                at_boundary = (batch + 1) % accumulate == 0 or batch + 1 == n_batches
                if at_boundary:
                    if cfg.clip_grad_norm is not None:
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
                    optimizer.step()
                    if ema is not None:
                        ema.update(model)
                    lr = optimizer.param_groups[0]["lr"]
                    if scheduler is not None:
                        scheduler.step_batch()
                step, done = step + 1, done + 1
                correct = (scores.argmax(1) == y).sum().item()
                n, loss_sum, correct_sum = (n + len(y), loss_sum + loss_value * len(y),
                                            correct_sum + correct)
                totals = {"images": n, "loss_sum": loss_sum, "correct": correct_sum}
                stop = hooks.call("on_batch_end", epoch=epoch, step=step, batch=batch,
                                  loss=loss_value, correct=correct, size=len(y), lr=lr,
                                  totals=totals, **ctx) or stop
                if stop and at_boundary:  # never stop with half-accumulated gradients
                    break
            if stop:
                break
            seconds = time.perf_counter() - t0
            images_per_s = (n - n0) / seconds
            n = max(n, 1)  # resumed after the epoch's last batch: nothing left to average
            metrics = {"epoch": epoch + 1, "step": step, "lr": lr, "train_loss": loss_sum / n,
                       "train_acc1": correct_sum / n,
                       **evaluate(model if ema is None else ema.module, loaders.val,
                                  precision=precision, channels_last=cl,
                                  loss_fn=loss_fn, prefix="val"),
                       "seconds": seconds, "images_per_s": images_per_s}
            history.append(metrics)
            if scheduler is not None:
                scheduler.step_epoch(metrics.get("val_acc1", metrics["train_acc1"]))
            done, n, loss_sum, correct_sum = 0, 0, 0.0, 0
            stop = hooks.call("on_epoch_end", epoch=epoch, step=step, metrics=metrics,
                              history=history, **ctx)
            if stop:
                break
    except KeyboardInterrupt:  # Ctrl-C: stop where we are and let the hooks save `last`
        stop = "interrupted"
    history.stop_reason = (stop if isinstance(stop, str) else "callback") if stop else None
    hooks.call("on_train_end", epoch=epoch, step=step, batch_in_epoch=done, history=history,
               totals={"images": n, "loss_sum": loss_sum, "correct": correct_sum}, **ctx)
    return history
