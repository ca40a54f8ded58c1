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
