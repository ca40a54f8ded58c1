"""Hooks: metric files, checkpoints on epoch end and on interruption, early stopping, signals."""

import csv
import io
import json
import signal

import torch

from cnnlab.train import loop
from cnnlab.train.callbacks import (Checkpointer, EarlyStopping, MetricsLogger, ProgressBar,
                                    StopOnSignal)
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.config import TrainConfig
from cnnlab.train.optim import build_optimizer
from toys import RaiseAt

CFG = TrainConfig(epochs=3, lr=0.05, precision="32")


def test_metrics_files_and_checkpoints(toy, tmp_path):
    model, loaders = toy
    ckpt = Checkpointer(tmp_path, loaders.classes, meta={"model": "tiny"})
    history = loop.fit(model, loaders, build_optimizer(model, "momentum", lr=0.05), CFG,
                       callbacks=[MetricsLogger(tmp_path), ckpt])
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["val_acc1"]) == history[-1]["val_acc1"]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]

    weights, state = load_checkpoint(tmp_path, "last")
    assert state["epoch"] == 3 and state["global_step"] == 18 and state["batch_in_epoch"] == 0
    assert torch.equal(weights["fc.weight"], model.fc.weight.detach())
    _, best = load_checkpoint(tmp_path, "best")
    assert best["epoch"] == ckpt.best_epoch
    assert best["metrics"]["val_acc1"] == max(r["val_acc1"] for r in history)
    assert state["classes"] == ["a", "b", "c"] and state["meta"]["model"] == "tiny"


def test_interrupt_saves_last_mid_epoch(toy, tmp_path):
    model, loaders = toy
    ckpt = Checkpointer(tmp_path, loaders.classes)
    history = loop.fit(model, loaders, build_optimizer(model, "sgd", lr=0.05), CFG,
                       callbacks=[ckpt, RaiseAt(step=9)])
    assert history.stop_reason == "interrupted"
    weights, state = load_checkpoint(tmp_path, "last")
    # 6 batches an epoch: interrupted after 3 batches of the second epoch
    assert (state["epoch"], state["global_step"], state["batch_in_epoch"]) == (1, 9, 3)
    assert torch.equal(weights["fc.bias"], model.fc.bias.detach())
    assert ckpt.interrupted_save is not None


def test_early_stopping_returns_a_reason():
    es = EarlyStopping(patience=2)
    answers = [es.on_epoch_end(metrics={"val_acc1": v}) for v in (0.5, 0.6, 0.6, 0.55)]
    assert answers == [None, None, None, "early_stopping"]
    assert es.on_epoch_end(metrics={}) is None


def test_signal_becomes_a_clean_stop():
    previous = signal.getsignal(signal.SIGTERM)
    with StopOnSignal() as stopper:
        assert stopper.on_batch_end() is None
        signal.raise_signal(signal.SIGTERM)            # handled: the process keeps running
        assert stopper.on_batch_end() == "terminated"
    assert signal.getsignal(signal.SIGTERM) is previous  # handler restored


def test_progress_bar_reports_loss_accuracy_and_speed(toy):
    model, loaders = toy
    out = io.StringIO()
    loop.fit(model, loaders, build_optimizer(model, "sgd", lr=0.05),
             TrainConfig(epochs=2, precision="32"), callbacks=[ProgressBar(file=out)])
    text = out.getvalue()
    assert "epoch   2/2" in text and "img/s" in text and "val loss" in text
