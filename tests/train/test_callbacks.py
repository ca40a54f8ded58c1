"""Hooks: metric files, checkpoints on epoch end and on interruption, early stopping, signals."""

import csv
import io
import json
import signal

import torch

from cnnlab.train import loop
from cnnlab.train.callbacks import (Checkpointer, EarlyStopping, MetricsLogger, ProgressBar,
                                    StepLog, StopOnSignal)
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


def test_early_stopping_state_round_trips():
    es = EarlyStopping(patience=3)
    for v in (0.5, 0.7, 0.6):
        es.on_epoch_end(metrics={"val_acc1": v})
    again = EarlyStopping(patience=3)
    again.load_state_dict(es.state_dict())
    assert (again.best, again.bad_epochs) == (0.7, 1)
    answers = [again.on_epoch_end(metrics={"val_acc1": v}) for v in (0.6, 0.6)]
    assert answers == [None, "early_stopping"] and again.stopped


def test_checkpoint_every_saves_mid_epoch_with_hook_state(toy, tmp_path):
    model, loaders = toy                                    # 6 batches an epoch
    es = EarlyStopping(patience=5)
    saved = []

    class Spy:   # after the Checkpointer: what `last` holds once each step is done
        def on_batch_end(self, step, **_):
            state = load_checkpoint(tmp_path, "last")[1] if step > 3 else None
            saved.append(state and (state["global_step"], state["batch_in_epoch"],
                                    state["epoch_totals"], state["early_stopping"]["bad_epochs"]))

    ckpt = Checkpointer(tmp_path, loaders.classes, every=4, stateful={"early_stopping": es})
    loop.fit(model, loaders, build_optimizer(model, "sgd", lr=0.05),
             TrainConfig(epochs=2, precision="32"), callbacks=[es, ckpt, Spy()])
    # steps 4..12; step 6 (12) ends an epoch: on_epoch_end saves it, after the Spy's turn
    assert [s[:2] for s in saved[3:]] == [(4, 4)] * 3 + [(6, 0)] + [(8, 2)] * 5
    assert saved[-1][3] == 0                                # val_acc1 rose in epoch 1
    assert saved[4][2]["images"] == 64 and saved[-1][2]["images"] == 32
    _, state = load_checkpoint(tmp_path, "last")
    assert state["global_step"] == 12 and state["epoch_totals"] is None
    assert state["early_stopping"] == es.state_dict()


def test_step_log_writes_each_step_and_drops_steps_after_a_resume_point(toy, tmp_path):
    model, loaders = toy
    loop.fit(model, loaders, build_optimizer(model, "sgd", lr=0.05),
             TrainConfig(epochs=2, precision="32"), callbacks=[StepLog(tmp_path, loaders.train)])
    rows = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert sorted(i for r in rows[:6] for i in r["indices"]) == list(range(96))
    assert rows[6]["epoch"] == 1 and rows[6]["batch"] == 0 and len(rows[6]["indices"]) == 16
    with open(tmp_path / "steps.jsonl", "a") as f:
        f.write('{"step": 13, "lo')                         # cut short by a kill
    StepLog(tmp_path, loaders.train, resume_step=8)
    kept = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert kept == rows[:8]


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
