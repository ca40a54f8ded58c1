"""RELIABILITY.md B4: exact resume after a real `kill -9`, mid-epoch, at an epoch boundary and at
the step right after a mid-epoch checkpoint (the off-by-one case).

Run B starts as a fresh interpreter (this file run as a script) that SIGKILLs itself at a chosen
point (a callback calling os.kill on its own pid, after that step's log line and any checkpoint
of that step), so the kill takes everything a crash takes: open files, generator states, the
half-finished epoch. It is then resumed from its `last` checkpoint (here, in the test process,
which also checks that the run does not depend on the process it ran in) and compared with run
A, which went all 18 steps uninterrupted. CPU, deterministic
algorithms, 1 thread, random shifts and flips on, dropout and batch norm in the model.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.train.checkpoint import load_checkpoint

# 3 classes x 10 images, 2 per class held out: 24 training images, batches of 4 -> 6 steps per
# epoch, 3 epochs; `last` is also saved every 4 steps (4, 8, 16 mid-epoch; 6, 12, 18 epoch ends).
STEPS, TRAIN_IMAGES = 18, 24


class Kill:
    """SIGKILLs this process at global step N ("step=N", after that step's hooks) or at the start
    of 0-based epoch N ("epoch=N", after the previous epoch's checkpoint)."""

    def __init__(self, spec: str):
        self.what, _, at = spec.partition("=")
        self.at = int(at or -1)

    def on_batch_end(self, step, **_):
        if self.what == "step" and step == self.at:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_epoch_start(self, epoch, **_):
        if self.what == "epoch" and epoch == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


def run(data, out, name, kill="none"):
    """Train run NAME under OUT (resuming it if it exists); here and in the killed subprocess."""
    from torch import nn

    from cnnlab.train.batches import folder_loaders
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.run import resume_config, train

    run_dir = Path(out) / name
    resume = run_dir.is_dir()
    # num_workers=2: the images are decoded by two worker processes (cnnlab.data.workers). The
    # training batches are then augmented in-process from the decoded tensors, by design (decode
    # once, augment batched), so the training loop itself has no DataLoader workers.
    loaders = folder_loaders(data, 16, 4, val_fraction=0.2, seed=0, shift=2, flip=True,
                             split_file=run_dir / "split.json" if resume else None,
                             data_overrides={"num_workers": 2, "progress": False})
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.2),
                          nn.Linear(16, 3))
    if resume:
        cfg, _ = resume_config(run_dir)
    else:
        cfg = TrainConfig(epochs=3, batch_size=4, lr=0.05, random_shift=2, hflip=True, seed=3,
                          deterministic=True, threads=1, precision="32", checkpoint_every=4,
                          step_log=True, monitor_every=5, out_dir=str(out), name=name,
                          quiet=True)
    return train(cfg, model=model, loaders=loaders, callbacks=[Kill(kill)],
                 resume=run_dir if resume else None)


def launch_and_kill(data: Path, out: Path, name: str, kill: str) -> None:
    """Run `run` in a fresh interpreter that kills itself with SIGKILL at `kill`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, __file__, str(data), str(out), name, kill], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]


def steps(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]


def tensors(state) -> list[torch.Tensor]:
    """Every tensor in a nested dict/list, in a fixed order."""
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        return [t for k in sorted(state, key=str) for t in tensors(state[k])]
    if isinstance(state, (list, tuple)):
        return [t for v in state for t in tensors(v)]
    return []


@pytest.fixture(scope="module")
def data_and_run_a(tmp_path_factory, folder_factory):
    root = tmp_path_factory.mktemp("b4")
    data = folder_factory(root / "shapes", per_class=10, size=16)
    return data, run(data, root / "runs", "A").run_dir


@pytest.mark.parametrize("kill, resumed_at", [
    ("step=11", 8),                                            # mid-epoch 2, saved at step 8
    ("epoch=2", 12),                                           # start of epoch 3, after its save
    ("step=5", 4),                                             # the step after the save at 4
])
def test_b4_kill_9_then_resume_equals_the_uninterrupted_run(data_and_run_a, tmp_path, kill,
                                                            resumed_at):
    data, run_a = data_and_run_a
    launch_and_kill(data, tmp_path, "B", kill)
    run_b = tmp_path / "B"
    killed_log = steps(run_b)
    assert killed_log[-1]["step"] > resumed_at or kill.startswith("epoch")  # work was lost
    # TensorBoard reads a directory's event files in name order, and a name starts with the
    # writer's creation time in whole seconds: a resume within the second of the killed run's
    # start (only a test is that quick) would sort before it
    born = max(int(p.name.split(".")[3]) for p in (run_b / "tensorboard").iterdir())
    while int(time.time()) <= born:
        time.sleep(0.05)
    assert run(data, tmp_path, "B").summary["stop_reason"] is None
    resume = json.loads((run_b / "resumes.jsonl").read_text().splitlines()[-1])
    assert resume["global_step"] == resumed_at

    log_a, log_b = steps(run_a), steps(run_b)
    assert [r["step"] for r in log_a] == list(range(1, STEPS + 1))
    assert log_b == log_a          # per step: the same sample indices, loss, lr (exact floats)
    for epoch in range(3):         # each epoch visits every training image once
        seen = [i for r in log_a if r["epoch"] == epoch for i in r["indices"]]
        assert sorted(seen) == list(range(TRAIN_IMAGES))
    timing = {"seconds", "images_per_s"}
    rows_a, rows_b = ([{k: v for k, v in json.loads(line).items() if k not in timing}
                       for line in (r / "metrics.jsonl").read_text().splitlines()]
                      for r in (run_a, run_b))
    assert len(rows_a) == 3 and rows_b == rows_a  # the resumed epoch's train metrics included

    (wa, sa), (wb, sb) = load_checkpoint(run_a), load_checkpoint(run_b)
    assert sa["global_step"] == sb["global_step"] == STEPS
    assert wa.keys() == wb.keys() and any("running_mean" in k for k in wa)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)          # parameters and BN buffers
    for part in ("optimizer", "rng"):
        ta, tb = tensors(sa[part]), tensors(sb[part])
        assert len(ta) == len(tb) > 0 and all(torch.equal(a, b) for a, b in zip(ta, tb)), part
    assert sa["optimizer"]["param_groups"] == sb["optimizer"]["param_groups"]
    assert sa["scheduler"] == sb["scheduler"]
    if kill == "step=11":          # the killed run logged steps 9-11 to TensorBoard too
        a, b = tb_scalars(run_a), tb_scalars(run_b)
        assert b["train/loss"] == a["train/loss"] and [s for s, _ in a["train/loss"]] == [6, 12, 18]
        assert [s for s, _ in b["loss/train"]] == [1, 6, 9, 14]   # the monitor: 11 purged


def tb_scalars(run: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0}).Reload()
    return {t: [(e.step, e.value) for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}


if __name__ == "__main__":   # the killed run: python test_reliability_b4.py DATA OUT NAME KILL
    run(*sys.argv[1:])
