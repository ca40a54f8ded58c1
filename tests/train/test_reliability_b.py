"""RELIABILITY.md section B (checkpoint writing, durability and resume).

Already covered elsewhere: B4 exact resume after a real kill -9 by tests/train/
test_reliability_b4.py (mid-epoch, at an epoch boundary and at the step after a checkpoint),
and in-process by tests/train/test_run.py (test_resume_on_digits_is_bit_exact,
test_resume_mid_epoch_gives_the_same_weights); B5's model/BN/momentum/schedule/RNG round trip
by tests/train/test_checkpoint.py::test_round_trip_with_weights_only; B6 by
test_run.py::test_resume_refuses_changed_settings_unless_forced.
"""

import errno
import os
import random
import signal
import stat
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab.errors import InvalidCheckpointError
from cnnlab.train import checkpoint as ck
from cnnlab.train.optim import LRSchedule


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


# -- B1: kill -9 while saving ---------------------------------------------------------------


def _save_forever(directory: Path, net: nn.Module, epoch: int, seed: int, done_fd: int) -> None:
    """The child: save `last` in a loop, each rename delayed (the fault hook), until killed;
    a byte to `done_fd` after the first save."""
    rnd = random.Random(seed)
    real_replace = os.replace

    def slow_replace(src, dst):
        time.sleep(rnd.uniform(0, 0.004))   # widen the window between temp write and rename
        real_replace(src, dst)

    ck.os.replace = slow_replace            # os itself: this process only lives to be killed
    while True:
        with torch.no_grad():
            net.weight.fill_(epoch)         # weights that say which save they belong to
        ck.save_checkpoint(directory, "last", net, epoch=epoch, global_step=10 * epoch)
        if done_fd >= 0:
            os.write(done_fd, b".")
            os.close(done_fd)
            done_fd = -1
        epoch += 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_b1_kill_9_at_random_points_while_saving(tmp_path):
    net = nn.Linear(8, 8)
    with torch.no_grad():
        net.weight.fill_(0)                 # epoch 0's weights say "0", like every later save
    ck.save_checkpoint(tmp_path, "last", net, epoch=0)
    rnd = random.Random(0)
    epoch, mid_save, rolled = 0, 0, 0
    for i in range(60):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            try:
                os.close(r)
                _save_forever(tmp_path, net, epoch + 1, seed=i, done_fd=w)
            finally:
                os._exit(1)
        os.close(w)
        # one save finished first, so every kill makes progress however loaded the machine is
        assert os.read(r, 1) == b".", "the child died before its first save"
        os.close(r)
        time.sleep(rnd.uniform(0.002, 0.04))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

        leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
        mid_save += bool(leftovers)
        weights, state = ck.load_checkpoint(tmp_path, "last")     # always a complete pair
        assert state["epoch"] >= epoch, "an older checkpoint came back: something was lost"
        assert torch.all(weights["weight"] == state["epoch"]), "weights of another save"
        ck.load_weights_file(tmp_path / "last.safetensors")    # no final name is partial
        ck.load_state_file(tmp_path / "last.state.pt")
        epoch = state["epoch"]
        pending = tmp_path / ".last.safetensors.pending"
        rolled += pending.is_file() and ck.sha256_file(pending) == state["weights_sha256"]

        ck.remove_stale_temps(tmp_path)                           # what the next start does
        assert sorted(os.listdir(tmp_path)) == ["last.safetensors", "last.state.pt"], leftovers
        assert ck.load_checkpoint(tmp_path, "last")[1]["epoch"] == epoch
        tensors, _ = ck.load_weights_file(tmp_path / "last.safetensors")
        assert torch.all(tensors["weight"] == epoch)              # rolled forward, not back
    assert mid_save >= 20, f"only {mid_save} of 60 kills landed inside a save"
    assert epoch >= 10, f"the children saved only {epoch} times"
    assert rolled >= 1, "no kill landed between the commit point and the final rename"


def test_b1_kill_after_the_commit_point_rolls_forward(tmp_path, monkeypatch):
    net = nn.Linear(2, 2)
    ck.save_checkpoint(tmp_path, "last", net, epoch=1)
    real = os.replace

    def die_on_final_rename(src, dst):
        if str(src).endswith(".pending"):
            raise KeyboardInterrupt("killed between the state and the weights' rename")
        real(src, dst)

    monkeypatch.setattr(ck.os, "replace", die_on_final_rename)
    with torch.no_grad():
        net.weight.fill_(2.0)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(tmp_path, "last", net, epoch=2)
    monkeypatch.undo()
    assert (tmp_path / ".last.safetensors.pending").is_file()
    weights, state = ck.load_checkpoint(tmp_path, "last")          # the new save is committed
    assert state["epoch"] == 2 and torch.all(weights["weight"] == 2.0)
    assert ck.remove_stale_temps(tmp_path) == []                  # renamed into place, not lost
    assert sorted(os.listdir(tmp_path)) == ["last.safetensors", "last.state.pt"]
    assert torch.all(ck.load_weights_file(tmp_path / "last.safetensors")[0]["weight"] == 2.0)


# -- B2: disk full --------------------------------------------------------------------------


class _FullDisk:
    """`open` for checkpoint.py whose `n`-th write raises ENOSPC, as a full file system does."""

    def __init__(self, n: int):
        self.n, self.writes = n, 0

    def __call__(self, path, mode="r", *args, **kw):
        f = open(path, mode, *args, **kw)
        disk = self

        class File:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, data):
                disk.writes += 1
                if disk.writes == disk.n:
                    f.write(bytes(data)[: len(data) // 2])   # a partial write, then the error
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return f.write(data)

            def __getattr__(self, name):
                return getattr(f, name)

        return File()


@pytest.mark.parametrize("nth, name", [(1, r"\.last\.safetensors\.pending"),
                                       (2, r"last\.state\.pt")])
def test_b2_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch, nth, name):
    net = nn.Linear(64, 32)
    ck.save_checkpoint(tmp_path, "last", net, epoch=1)
    before = files(tmp_path)
    monkeypatch.setattr(ck, "open", _FullDisk(nth), raising=False)
    with torch.no_grad():
        net.weight.add_(1.0)
    with pytest.raises(ck.CheckpointWriteError,
                       match=rf"no space left on device while writing '.*{name}' "
                             r"\(need ~0\.\d+ MB, [\d.]+ MB free\)") as exc:
        ck.save_checkpoint(tmp_path, "last", net, epoch=2)
    assert isinstance(exc.value, OSError)       # callers that catch OSError still do
    monkeypatch.undo()
    assert files(tmp_path) == before            # previous pair intact, no orphan temp files
    assert ck.load_checkpoint(tmp_path, "last")[1]["epoch"] == 1


# -- B3: the write protocol -----------------------------------------------------------------


def test_b3_write_protocol_order(tmp_path, monkeypatch):
    net = nn.Linear(2, 2)
    ck.save_checkpoint(tmp_path, "last", net, epoch=1)
    events = []
    real_open, real_fsync, real_replace = open, os.fsync, os.replace

    def rec_open(path, mode="r", *a, **kw):
        f = real_open(path, mode, *a, **kw)
        real_flush = f.flush
        f.flush = lambda: (events.append(("flush", Path(path).name)), real_flush())[1]
        return f

    def rec_fsync(fd):
        events.append(("fsync", "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"))
        real_fsync(fd)

    def rec_replace(src, dst):
        assert Path(src).parent == Path(dst).parent == tmp_path   # never via $TMPDIR
        events.append(("replace", Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(ck, "open", rec_open, raising=False)
    monkeypatch.setattr(ck.os, "fsync", rec_fsync)
    monkeypatch.setattr(ck.os, "replace", rec_replace)
    ck.save_checkpoint(tmp_path, "last", net, epoch=2)
    monkeypatch.undo()
    pid = os.getpid()
    # close() flushes once more after the fsync, with nothing left in the buffer: not a write
    events = [e for i, e in enumerate(events)
              if not (e[0] == "flush" and i and events[i - 1] == ("fsync", "file"))]
    assert events == [
        # (1) the new weights, durably, under a name no reader uses yet
        ("flush", f".last.safetensors.pending.tmp-{pid}"), ("fsync", "file"),
        ("replace", f".last.safetensors.pending.tmp-{pid}", ".last.safetensors.pending"),
        ("fsync", "dir"),
        # (2) the state, which records the weights' sha256: the commit point
        ("flush", f".last.state.pt.tmp-{pid}"), ("fsync", "file"),
        ("replace", f".last.state.pt.tmp-{pid}", "last.state.pt"), ("fsync", "dir"),
        # (3) the weights to their final name (a crash before this rolls forward on load)
        ("replace", ".last.safetensors.pending", "last.safetensors"), ("fsync", "dir"),
    ]
    assert ck.load_checkpoint(tmp_path, "last")[1]["epoch"] == 2


# -- B5: the state pieces test_checkpoint.py does not cover ------------------------------


def test_b5_adam_moments_schedule_and_dtypes_round_trip(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    sched = LRSchedule(opt, "cosine", epochs=3, steps_per_epoch=4, warmup_epochs=1)

    def step(model, o, s):
        model(torch.randn(3, 1, 4, 4)).square().mean().backward()
        o.step()
        o.zero_grad()
        s.step_batch()

    for _ in range(5):
        step(net, opt, sched)
    ck.save_checkpoint(tmp_path, "last", net, optimizer=opt, scheduler=sched, epoch=1,
                       global_step=5, batch_in_epoch=1)
    weights, state = ck.load_checkpoint(tmp_path, "last")
    for k, v in net.state_dict().items():   # incl. BN running stats and the int64 counter
        assert weights[k].dtype == v.dtype and torch.equal(weights[k], v), k
    assert weights["1.num_batches_tracked"].dtype == torch.int64
    torch.manual_seed(1)
    fresh = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))
    fresh.load_state_dict(weights)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-2)
    fresh_sched = LRSchedule(fresh_opt, "cosine", epochs=3, steps_per_epoch=4, warmup_epochs=1)
    fresh_opt.load_state_dict(state["optimizer"])
    fresh_sched.load_state_dict(state["scheduler"])
    for p, q in zip(net.parameters(), fresh.parameters()):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            a, b = opt.state[p][key], fresh_opt.state[q][key]
            assert a.dtype == b.dtype and torch.equal(a, b), key
    assert fresh_sched.state_dict() == sched.state_dict()
    # the first resumed step uses the LR the uninterrupted run uses
    torch.manual_seed(2)
    step(net, opt, sched)
    torch.manual_seed(2)
    step(fresh, fresh_opt, fresh_sched)
    assert [g["lr"] for g in fresh_opt.param_groups] == [g["lr"] for g in opt.param_groups]
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), fresh.parameters()))


# -- B7: state that cannot be restored is never skipped silently -----------------------------


def _rewrite_state(path: Path, edit) -> None:
    state = ck.load_state_file(path)
    edit(state)
    state["state_sha256"] = ck.state_digest(state)
    torch.save(state, path)


@pytest.mark.parametrize("edit, match", [
    (lambda s: s["rng"].pop("numpy"), "random-generator state"),
    (lambda s: s["rng"]["python"].update(state=torch.zeros(3, dtype=torch.int64)),
     "random-generator state"),
    (lambda s: s.pop("rng"), "lacks rng"),
])
def test_b7_missing_or_broken_rng_state_is_a_clear_error(toy_factory, tmp_path, edit, match):
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.run import train

    model, loaders = toy_factory()
    cfg = TrainConfig(epochs=2, out_dir=str(tmp_path), name="r", quiet=True, precision="32")
    run = train(cfg, model=model, loaders=loaders, callbacks=[_StopAfter(1)]).run_dir
    _rewrite_state(run / "last.state.pt", edit)
    before = (run / "last.safetensors").read_bytes()
    with pytest.raises(InvalidCheckpointError, match=match):   # not a resume with fresh RNGs
        train(cfg, model=model, loaders=loaders, resume=run)
    assert (run / "last.safetensors").read_bytes() == before  # nothing trained or saved


class _StopAfter:
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, epoch, **_):
        return "stopped" if epoch + 1 == self.epochs else None


# -- B8: preempted at every epoch boundary ---------------------------------------------------


class _Orders:
    """Records the training order of each epoch as the loop sets it up."""

    def __init__(self, batches, out):
        self.batches, self.out = batches, out

    def on_epoch_start(self, epoch, **_):
        self.out[epoch] = self.batches.order().tolist()


def test_b8_five_preemptions_at_epoch_boundaries(toy_factory, tmp_path):
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.run import train

    cfg = TrainConfig(epochs=5, out_dir=str(tmp_path), name="full", quiet=True, precision="32",
                      deterministic=True)
    model, loaders = toy_factory(shift=1)
    full_orders = {}
    full = train(cfg, model=model, loaders=loaders, callbacks=[_Orders(loaders.train, full_orders)])

    cut = TrainConfig(**{**cfg.__dict__, "name": "cut"})
    orders, run = {}, None
    for cycle in range(5):   # a fresh process each time: new model object, new loaders
        model, loaders = toy_factory(shift=1)
        hooks = [_Orders(loaders.train, orders), _StopAfter(cycle + 1)]
        result = train(cut, model=model, loaders=loaders, callbacks=hooks, resume=run)
        run = result.run_dir
        assert ck.load_checkpoint(run)[1]["epoch"] == cycle + 1
    assert orders == full_orders and len(orders) == 5
    assert len({tuple(o) for o in orders.values()}) == 5     # not the same order every epoch
    a, b = full.model.state_dict(), result.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
