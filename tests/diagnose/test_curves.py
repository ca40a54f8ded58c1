"""Curve diagnostics: NaN, exploding, flat losses; over-/under-fitting; a real diverging run."""

import math

from cnnlab.diagnose.curves import diagnose_history, diagnose_losses
from cnnlab.diagnose.monitor import TrainingMonitor
from cnnlab.train.config import TrainConfig
from cnnlab.train.loop import fit
from cnnlab.train.optim import build_optimizer


def codes(findings):
    return [f.code for f in findings]


def row(epoch, train_loss, val_loss, train_acc, val_acc):
    return {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
            "train_acc1": train_acc, "val_acc1": val_acc}


def test_step_losses():
    falling = [2.3 * math.exp(-i / 20) for i in range(100)]
    assert diagnose_losses(falling) == []
    nan = diagnose_losses([2.3, 2.0, float("nan"), 1.0])
    assert codes(nan) == ["loss_nonfinite"] and "step 3" in nan[0].message
    exploding = [2.3, 2.0, 1.5, 1.0] + [10.0 ** k for k in range(1, 8)]
    assert codes(diagnose_losses(exploding)) == ["loss_exploding"]
    flat = [2.30 - 0.0001 * i for i in range(50)]
    found = diagnose_losses(flat)
    assert codes(found) == ["loss_flat"] and "too low" in found[0].message
    assert diagnose_losses(flat[:5]) == []                       # too short to call it flat


def test_history_overfitting_gap():
    rows = [row(1, 1.0, 1.0, 0.70, 0.68), row(2, 0.3, 0.9, 0.95, 0.75)]
    found = diagnose_history(rows)
    assert codes(found) == ["overfitting"] and "20.0-point gap" in found[0].message


def test_history_val_loss_rising():
    rows = [row(1, 1.0, 0.50, 0.90, 0.88), row(2, 0.6, 0.45, 0.93, 0.90),
            row(3, 0.4, 0.55, 0.95, 0.90), row(4, 0.3, 0.70, 0.96, 0.90)]
    found = diagnose_history(rows)
    assert codes(found) == ["overfitting"] and "epoch 2" in found[0].message


def test_history_underfitting_and_healthy():
    under = [row(1, 2.0, 2.0, 0.40, 0.41), row(2, 1.5, 1.5, 0.55, 0.54)]
    assert codes(diagnose_history(under)) == ["underfitting"]
    good = [row(1, 0.8, 0.7, 0.80, 0.82), row(2, 0.2, 0.25, 0.97, 0.95)]
    assert diagnose_history(good, chance_loss=math.log(10)) == []


def test_history_nonfinite_stop_skips_gap_calls():
    rows = [row(1, 2.0, 2.0, 0.40, 0.41)]
    assert codes(diagnose_history(rows, stop_reason="nonfinite_loss")) == ["loss_nonfinite"]


def test_lr_100_on_a_small_net_is_caught(toy):
    net, loaders = toy.net(), toy.loaders(n=48, batch_size=8)
    mon = TrainingMonitor(every=5)
    opt = build_optimizer(net, "momentum", lr=100.0, weight_decay=0.0)
    history = fit(net, loaders, opt, TrainConfig(epochs=3, precision="32", channels_last=False),
                  [mon])
    step_codes = codes(diagnose_losses(mon.losses))
    run_codes = codes(diagnose_history(history, history.stop_reason, chance_loss=math.log(3)))
    assert step_codes[0] in ("loss_exploding", "loss_nonfinite")
    assert {"loss_above_chance", "loss_nonfinite"} & set(run_codes)
    assert "overfitting" not in run_codes and "underfitting" not in run_codes
    # the same net at a sane rate trains without any call-out
    net, mon = toy.net(), TrainingMonitor(every=5)
    opt = build_optimizer(net, "momentum", lr=0.1, weight_decay=0.0)
    history = fit(net, loaders, opt, TrainConfig(epochs=3, precision="32", channels_last=False),
                  [mon])
    assert diagnose_losses(mon.losses) == []
    assert diagnose_history(history, chance_loss=math.log(3)) == []
