"""fit/evaluate: a tiny fit learns; hooks see events in order and can stop or interrupt it."""

import pytest
import torch

from cnnlab.errors import DataError
from cnnlab.train import loop
from cnnlab.train.config import TrainConfig
from cnnlab.train.optim import build_optimizer, build_schedule

CFG = TrainConfig(epochs=4, lr=0.1, precision="32", weight_decay=0.0)


def test_tiny_fit_reduces_loss_and_reaches_accuracy(toy):
    model, loaders = toy
    before = loop.evaluate(model, loaders.val, prefix="val")
    opt = build_optimizer(model, "momentum", lr=CFG.lr)
    sched = build_schedule(opt, CFG, len(loaders.train))
    history = loop.fit(model, loaders, opt, CFG, scheduler=sched)
    assert len(history) == 4 and history.stop_reason is None
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_loss"] < before["val_loss"]
    assert history[-1]["val_acc1"] >= 0.9
    assert history[-1]["lr"] < CFG.lr                                   # cosine decayed
    assert [r["epoch"] for r in history] == [1, 2, 3, 4] and history[-1]["step"] == 4 * 6
    assert history.best("val_acc1")["val_acc1"] == max(r["val_acc1"] for r in history)
    assert "val_acc5" not in history[-1]                                # 3 classes: no top-5


def test_evaluate_counts_and_confusion(toy):
    model, loaders = toy
    out = loop.evaluate(model, loaders.val, confusion=True, prefix="v")
    cm = torch.tensor(out["v_confusion_matrix"])
    assert out["v_images"] == 30 and int(cm.sum()) == 30
    assert int(cm.trace()) == round(out["v_acc1"] * 30)
    assert loop.evaluate(model, None) == {}


class Recorder:
    def __init__(self, stop_at_batch=None, stop_at_epoch=None, raise_at_batch=None):
        self.events, self.ends = [], []
        self.stop_at_batch, self.stop_at_epoch, self.raise_at_batch = (
            stop_at_batch, stop_at_epoch, raise_at_batch)

    def on_train_start(self, epochs, steps_per_epoch, **_):
        self.events.append(("start", epochs, steps_per_epoch))

    def on_epoch_start(self, epoch, **_):
        self.events.append(("epoch_start", epoch))

    def on_batch_end(self, step, loss, lr, **_):
        assert loss > 0 and lr > 0
        if step == self.raise_at_batch:
            raise KeyboardInterrupt
        return "enough" if step == self.stop_at_batch else None

    def on_epoch_end(self, epoch, metrics, **_):
        self.events.append(("epoch_end", epoch, metrics["epoch"]))
        return epoch == self.stop_at_epoch

    def on_train_end(self, epoch, step, batch_in_epoch, history, **_):
        self.ends.append((epoch, step, batch_in_epoch, history.stop_reason))


def run_fit(toy, rec):
    model, loaders = toy
    opt = build_optimizer(model, "sgd", lr=0.05)
    return loop.fit(model, loaders, opt, CFG, callbacks=[rec])


def test_events_in_order(toy):
    rec = Recorder()
    run_fit(toy, rec)
    assert rec.events[0] == ("start", 4, 6)
    assert rec.events[1:5] == [("epoch_start", 0), ("epoch_end", 0, 1), ("epoch_start", 1),
                               ("epoch_end", 1, 2)]
    assert rec.ends == [(3, 24, 0, None)]


def test_callbacks_stop_training(toy):
    rec = Recorder(stop_at_epoch=1)
    history = run_fit(toy, rec)
    assert len(history) == 2 and history.stop_reason == "callback"
    rec = Recorder(stop_at_batch=8)                       # mid-epoch 2 (6 batches an epoch)
    history = run_fit(toy, rec)
    assert len(history) == 1 and history.stop_reason == "enough"
    assert rec.ends == [(1, 8, 2, "enough")]


def test_keyboard_interrupt_stops_cleanly(toy):
    rec = Recorder(raise_at_batch=9)
    history = run_fit(toy, rec)                           # no exception escapes
    assert history.stop_reason == "interrupted" and len(history) == 1
    assert rec.ends == [(1, 9, 3, "interrupted")]


def test_empty_training_set_is_a_clear_error(toy):
    model, loaders = toy
    loaders.train.x, loaders.train.y = loaders.train.x[:0], loaders.train.y[:0]
    with pytest.raises(DataError, match="no batches"):
        loop.fit(model, loaders, build_optimizer(model, "sgd"), CFG)


def test_precision_and_layout_choices(monkeypatch, toy):
    cpu = torch.device("cpu")
    assert loop.resolve_precision("32", cpu) == "32"
    assert loop.resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert loop.resolve_precision("auto", cpu) == "32"      # AVX2 emulates bf16: slower
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert loop.resolve_precision("auto", cpu) == "bf16"
    model, _ = toy
    assert loop.use_channels_last(None, model) is True
    assert loop.use_channels_last(None, torch.nn.Linear(2, 2)) is False
    assert loop.use_channels_last(False, model) is False


def test_bf16_autocast_trains_with_fp32_weights(toy):
    model, loaders = toy
    cfg = TrainConfig(epochs=1, precision="bf16", weight_decay=0.0)
    history = loop.fit(model, loaders, build_optimizer(model, "sgd", lr=0.05), cfg)
    assert len(history) == 1 and all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.isfinite(torch.tensor(history[0]["train_loss"]))


def test_nonfinite_loss_stops_before_the_update(toy):
    model, loaders = toy
    x = loaders.train.x
    x[torch.arange(len(x)) == 40] = float("inf")                # one poisoned image
    opt = build_optimizer(model, "momentum", lr=CFG.lr)
    rec = Recorder()
    history = loop.fit(model, loaders, opt, CFG, [rec])
    assert history.stop_reason == "nonfinite_loss" and len(history) == 0
    assert "loss became nan at epoch 1" in history.stop_detail
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert rec.ends[0][3] == "nonfinite_loss"


def _one_batch_fit(toy, **cfg):
    """One SGD step (lr 0.1, no momentum) on one batch of 16; returns (before, after, history)."""
    from cnnlab.train.batches import Loaders, TensorBatches

    model, loaders = toy
    x, y = loaders.train.x[:16], loaders.train.y[:16]
    one = Loaders(TensorBatches(x, y, 16), None, None, loaders.classes)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = build_optimizer(model, "sgd", lr=0.1)
    c = TrainConfig(epochs=1, precision="32", weight_decay=0.0, channels_last=False, **cfg)
    history = loop.fit(model, one, opt, c)
    return before, model.state_dict(), history


def test_l1_adds_lr_times_l1_times_sign_to_weights_only(toy_factory):
    w0, plain, h0 = _one_batch_fit(toy_factory())
    _, lasso, h1 = _one_batch_fit(toy_factory(), l1=0.5)
    for k in w0:
        shift = lasso[k] - plain[k]
        if k.endswith("weight"):   # d/dw of l1*|w| is l1*sign(w): one step moves 0.1*0.5 more
            torch.testing.assert_close(shift, -0.05 * torch.sign(w0[k]), atol=1e-6, rtol=0)
        else:
            assert torch.equal(shift, torch.zeros_like(shift)), k
    assert h1[0]["train_loss"] == pytest.approx(h0[0]["train_loss"])  # logged: the data term


def test_clip_grad_norm_bounds_the_update(toy_factory):
    def step_norm(**cfg):
        before, after, _ = _one_batch_fit(toy_factory(), **cfg)
        return torch.cat([(after[k] - before[k]).flatten() for k in before]).norm().item()

    assert step_norm() > 0.01
    assert step_norm(clip_grad_norm=0.01) == pytest.approx(0.1 * 0.01, rel=1e-4)  # lr * max_norm


def test_accumulating_two_batches_of_8_equals_batches_of_16(toy_factory):
    from cnnlab.train.batches import TensorBatches

    def train(batch_size, accumulate, callbacks=()):
        model, loaders = toy_factory()
        loaders.train = TensorBatches(loaders.train.x, loaders.train.y, batch_size)
        cfg = TrainConfig(epochs=2, precision="32", weight_decay=0.0, accumulate=accumulate,
                          schedule="cosine", lr=0.1)
        opt = build_optimizer(model, "momentum", lr=cfg.lr)
        sched = build_schedule(opt, cfg, len(loaders.train))
        history = loop.fit(model, loaders, opt, cfg, callbacks, scheduler=sched)
        return model, history, sched

    big, h_big, s_big = train(16, 1)
    small, h_small, s_small = train(8, 2)
    for a, b in zip(big.parameters(), small.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert s_small.step == s_big.step == 12                  # schedule: optimiser steps
    assert h_small[-1]["step"] == 24                         # step: batches
    rec = Recorder(stop_at_batch=3)                          # asks mid-group: waits for batch 4
    train(8, 2, [rec])
    assert rec.ends == [(0, 4, 4, "enough")]
