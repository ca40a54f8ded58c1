"""Checkpoints: atomic writes survive a crash before the rename; round trip under weights_only."""

import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.errors import InvalidCheckpointError
from cnnlab.train import checkpoint as ck
from cnnlab.train.optim import LRSchedule

SRC = Path(__file__).resolve().parents[2] / "src" / "cnnlab"


def trained(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sched = LRSchedule(opt, "cosine", epochs=2, steps_per_epoch=3)
    for _ in range(2):
        loss = net(torch.randn(4, 1, 4, 4)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step_batch()
    return net, opt, sched


def test_round_trip_with_weights_only(tmp_path):
    net, opt, sched = trained()
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    ck.save_checkpoint(tmp_path, "last", net, optimizer=opt, scheduler=sched, epoch=1,
                       global_step=2, batch_in_epoch=1, classes=["cat", "dog"],
                       meta={"model": "toy"}, extra={"metrics": {"val_acc1": 0.5}})
    expected = (random.random(), np.random.rand(), torch.rand(1))

    # the state file is plain tensors/primitives: the default, safe torch.load reads it
    raw = torch.load(tmp_path / "last.state.pt", weights_only=True)
    assert raw["format"] == ck.STATE_FORMAT and raw["classes"] == ["cat", "dog"]

    weights, state = ck.load_checkpoint(tmp_path, "last")
    fresh, fresh_opt, fresh_sched = trained(seed=1)
    fresh.load_state_dict(weights)
    fresh_opt.load_state_dict(state["optimizer"])
    fresh_sched.load_state_dict(state["scheduler"])
    for a, b in zip(net.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b) and a.dtype == b.dtype   # incl. BN running stats
    for p, q in zip(net.parameters(), fresh.parameters()):
        assert torch.equal(opt.state[p]["momentum_buffer"], fresh_opt.state[q]["momentum_buffer"])
    assert fresh_sched.lr == sched.lr and fresh_sched.step == 2
    assert (state["epoch"], state["global_step"], state["batch_in_epoch"]) == (1, 2, 1)
    assert state["metrics"] == {"val_acc1": 0.5}

    random.random(), np.random.rand(), torch.rand(1)  # move the generators on, then restore
    ck.set_rng_state(state["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected

    tensors, header = ck.load_weights_file(tmp_path / "last.safetensors")
    assert header["classes"] == ["cat", "dog"] and header["model"] == "toy"
    assert header["format"] == ck.WEIGHTS_FORMAT and set(tensors) == set(net.state_dict())


def test_crash_before_rename_keeps_previous_checkpoint(tmp_path, monkeypatch):
    net, opt, sched = trained()
    ck.save_checkpoint(tmp_path, "last", net, optimizer=opt, epoch=1, global_step=2)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    calls = []

    def crash(src, dst):  # the process dies after the temp file is complete, before the rename
        calls.append((Path(src), Path(dst)))
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(ck.os, "replace", crash)
    with torch.no_grad():
        net[0].weight.add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(tmp_path, "last", net, optimizer=opt, epoch=2, global_step=4)
    monkeypatch.undo()

    src, dst = calls[0]
    assert src.parent == dst.parent == tmp_path        # temp file in the destination directory
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing partial left
    weights, state = ck.load_checkpoint(tmp_path, "last")
    assert state["epoch"] == 1
    assert not torch.equal(weights["0.weight"], net[0].weight.detach())


def test_write_order_and_stale_temps(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(ck.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(ck.os, "replace",
                        lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    ck.atomic_write(tmp_path / "x.bin", b"hello")
    assert events == ["fsync", "replace", "fsync"]      # file, rename, then the directory
    assert (tmp_path / "x.bin").read_bytes() == b"hello"

    stale = tmp_path / ".last.safetensors.tmp-12345"
    stale.write_bytes(b"partial")
    assert ck.remove_stale_temps(tmp_path) == [stale] and not stale.exists()


def test_mismatched_or_corrupt_files_are_clear_errors(tmp_path):
    net, opt, _ = trained()
    ck.save_checkpoint(tmp_path, "last", net, optimizer=opt, epoch=1)
    state_bytes = (tmp_path / "last.state.pt").read_bytes()
    with torch.no_grad():
        net[3].bias.add_(1.0)
    ck.save_checkpoint(tmp_path, "last", net, optimizer=opt, epoch=2)
    (tmp_path / "last.state.pt").write_bytes(state_bytes)   # weights new, state old
    with pytest.raises(InvalidCheckpointError, match="sha256 mismatch"):
        ck.load_checkpoint(tmp_path, "last")

    (tmp_path / "last.state.pt").write_bytes(state_bytes[: len(state_bytes) // 2])
    with pytest.raises(InvalidCheckpointError, match="corrupt"):
        ck.load_state_file(tmp_path / "last.state.pt")
    (tmp_path / "last.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(InvalidCheckpointError, match="corrupt"):
        ck.load_weights_file(tmp_path / "last.safetensors")
    with pytest.raises(InvalidCheckpointError, match="does not exist"):
        ck.load_checkpoint(tmp_path, "best")


def test_hostile_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.state.pt"
    torch.save({"format": ck.STATE_FORMAT, "x": Evil()}, path)
    with pytest.raises(InvalidCheckpointError):
        ck.load_state_file(path)
    assert not marker.exists()


def test_unsafe_state_is_refused_at_save_time(tmp_path):
    net, opt, _ = trained()
    extra = {"version": torch.__version__, "n": np.int64(3), "x": np.float32(0.5)}
    ck.save_checkpoint(tmp_path, "last", net, extra=extra)  # str/number subclasses made builtin
    _, state = ck.load_checkpoint(tmp_path, "last")
    assert type(state["version"]) is str and state["n"] == 3 and type(state["x"]) is float
    with pytest.raises(TypeError, match=r"extra\['obj'\]"):
        ck.save_checkpoint(tmp_path, "best", net, extra={"obj": object()})


def test_no_unsafe_torch_load_in_the_package():
    offenders = [str(p) for p in SRC.rglob("*.py")
                 if re.search(r"weights_only\s*=\s*False", p.read_text(encoding="utf-8"))]
    assert offenders == []
