"""TrainingMonitor: update/weight ratio by hand, dead ReLUs, flags, JSONL, optional TensorBoard."""

import json
import math
import sys
import types

import torch
from torch import nn

from cnnlab.diagnose.monitor import TrainingMonitor
from cnnlab.train.batches import Loaders, TensorBatches
from cnnlab.train.config import TrainConfig
from cnnlab.train.loop import fit
from cnnlab.train.optim import build_optimizer


def _fit(model, loaders, monitor, lr=0.1, epochs=1, optimizer="momentum"):
    opt = build_optimizer(model, optimizer, lr=lr, weight_decay=0.0)
    cfg = TrainConfig(epochs=epochs, precision="32", channels_last=False, weight_decay=0.0)
    return fit(model, loaders, opt, cfg, [monitor])


def test_update_ratio_of_one_sgd_step_by_hand():
    # 2 inputs -> 2 classes, no bias; one image x = (1, 2), label 0; plain SGD, lr 0.5
    model = nn.Linear(2, 2, bias=False)
    w = [[0.1, -0.2], [0.3, 0.4]]
    with torch.no_grad():
        model.weight.copy_(torch.tensor(w))
    x, y = [1.0, 2.0], 0
    batches = TensorBatches(torch.tensor([x]), torch.tensor([y]), 1)
    loaders = Loaders(batches, None, None, ["a", "b"])
    mon = TrainingMonitor(every=1)
    _fit(model, loaders, mon, lr=0.5, optimizer="sgd")
    # by hand: scores s = W x, p = softmax(s), dL/dW = (p - onehot(y)) x^T, update = -lr * grad
    s = [sum(wi * xi for wi, xi in zip(row, x)) for row in w]           # [-0.3, 1.1]
    e = [math.exp(v) for v in s]
    p = [v / sum(e) for v in e]
    grad = [[(p[i] - (i == y)) * xj for xj in x] for i in range(2)]
    g_norm = math.sqrt(sum(g * g for row in grad for g in row))
    w_norm = math.sqrt(sum(v * v for row in w for v in row))
    row = mon.records[0]["params"]["weight"]
    assert mon.records[0]["step"] == 1
    assert math.isclose(row["grad_norm"], g_norm, rel_tol=1e-5)
    assert math.isclose(row["update_norm"], 0.5 * g_norm, rel_tol=1e-5)
    assert math.isclose(row["update_ratio"], 0.5 * g_norm / w_norm, rel_tol=1e-5)


def test_dead_layer_is_flagged_and_healthy_one_is_not(toy, tmp_path):
    loaders = toy.loaders()
    dead = TrainingMonitor(tmp_path / "dead", every=1)
    _fit(toy.net(conv_bias=-100.0), loaders, dead)
    act = dead.records[0]["activations"]["features.1"]
    assert act["dead_fraction"] == 1.0 and act["mean"] == 0.0
    assert [f["layer"] for f in dead.flags if f["code"] == "dead_relu"] == ["features.1"]
    saved = json.loads((tmp_path / "dead" / "diagnostics.jsonl").read_text().splitlines()[0])
    assert [f["code"] for f in saved["flags"]] == ["dead_relu"]
    healthy = TrainingMonitor(every=1)
    _fit(toy.net(), loaders, healthy)
    assert healthy.records[0]["activations"]["features.1"]["dead_fraction"] < 0.5
    assert not [f for f in healthy.flags if f["code"] == "dead_relu"]


def test_samples_every_n_steps_writes_jsonl_and_removes_hooks(toy, tmp_path):
    loaders = toy.loaders(n=48, batch_size=8)                       # 6 steps per epoch
    net = toy.net()
    mon = TrainingMonitor(tmp_path, every=4)
    _fit(net, loaders, mon, epochs=2)                               # 12 steps
    assert [r["step"] for r in mon.records] == [1, 5, 9]
    assert len(mon.losses) == 12
    lines = (tmp_path / "diagnostics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 5, 9]
    assert set(json.loads(lines[0])["params"]) == {n for n, _ in net.named_parameters()}
    assert all(not m._forward_hooks for m in net.modules())


def test_update_ratio_flags_for_high_and_low_lr(toy):
    loaders = toy.loaders(n=48, batch_size=8)
    high, low = TrainingMonitor(every=2), TrainingMonitor(every=2)
    _fit(toy.net(), loaders, high, lr=5.0, optimizer="sgd")
    _fit(toy.net(), loaders, low, lr=1e-7, optimizer="sgd")
    assert any(f["code"] == "update_ratio_high" for f in high.flags)
    assert not any(f["code"] == "update_ratio_low" for f in high.flags)
    assert {f["code"] for f in low.flags} == {"update_ratio_low"}
    assert all(f["step"] > 1 for f in high.flags + low.flags)       # step 1 is the transient


def test_low_update_ratio_is_not_flagged_once_the_schedule_has_annealed():
    mon = TrainingMonitor(every=1)
    row = {"weight_norm": 1.0, "grad_norm": 1.0, "update_norm": 1e-6, "update_ratio": 1e-6}

    def sample(step, lr):
        record = {"step": step, "lr": lr, "params": {"conv.weight": dict(row)}, "activations": {}}
        mon._check(record)
        mon.records.append(record)

    sample(1, 0.1)                       # step 1: the init transient, never flagged
    sample(51, 0.1)                      # at the peak rate: a real "too low"
    assert [f["step"] for f in mon.flags] == [51]
    mon._flagged.clear()
    sample(701, 0.005)                   # one-cycle/cosine tail: under a tenth of the peak
    assert [f["step"] for f in mon.flags] == [51]
    sample(751, 0.05)                    # back above a tenth (a restart): flagged again
    assert [f["step"] for f in mon.flags] == [51, 751]


def test_tensorboard_is_optional_and_used_when_present(toy, tmp_path, monkeypatch):
    calls = []

    class FakeWriter:
        def __init__(self, logdir):
            calls.append(("init", logdir))

        def add_scalar(self, tag, value, step):
            calls.append(("scalar", tag, step))

        def add_histogram(self, tag, values, step):
            calls.append(("hist", tag, step))

        def close(self):
            calls.append(("close",))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    _fit(toy.net(), toy.loaders(), TrainingMonitor(tmp_path, every=2))
    assert calls[0] == ("init", str(tmp_path / "tensorboard")) and calls[-1] == ("close",)
    assert ("scalar", "loss/train", 1) in calls and ("hist", "weights/fc.weight", 1) in calls

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    mon = TrainingMonitor(tmp_path / "no_tb", every=2)
    _fit(toy.net(), toy.loaders(), mon)
    assert mon.records and (tmp_path / "no_tb" / "diagnostics.jsonl").is_file()
