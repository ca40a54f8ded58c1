"""RELIABILITY.md section A (checkpoint loading) for training checkpoints and the CLI verbs.

A2 and A6 are in tests/models/test_weights.py and tests/train/test_checkpoint.py; these add the
rows that reach `cnnlab train --resume` and `cnnlab predict`, and the checkpoint-file variants.
"""

import os
import random
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab.cli.main import main
from cnnlab.config import save_yaml
from cnnlab.errors import CheckpointMismatchError, InvalidCheckpointError
from cnnlab.train import checkpoint as ck
from cnnlab.train.config import TrainConfig


class Exploit:
    """A pickle payload that creates `marker` when unpickled without restrictions."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def hostile_run(root: Path, marker: Path) -> Path:
    """A run directory whose checkpoints look right but whose state files carry the payload."""
    run = root / "run"
    run.mkdir()
    save_yaml(TrainConfig(epochs=3, quiet=True, image_size=32), run / "config.yaml")
    net = nn.Linear(2, 2)
    for tag in ("last", "best"):
        ck.save_checkpoint(run, tag, net, epoch=1, meta={"model": "lenet5"})
        torch.save({"format": ck.STATE_FORMAT, "epoch": 1, "payload": Exploit(marker)},
                   run / f"{tag}.state.pt")
    return run


@pytest.mark.parametrize("verb", ["resume", "predict"])
def test_a1_hostile_state_file_at_the_cli(tmp_path, capsys, monkeypatch, verb):
    marker = tmp_path / "pwned"
    run = hostile_run(tmp_path, marker)
    # the switch that makes torch.load unrestricted by default must change nothing
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    argv = (["train", "--resume", str(run)] if verb == "resume"
            else ["predict", str(run), str(tmp_path / "x.png")])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err     # one line, no traceback
    assert "GLOBAL posix.system" in err or "GLOBAL os.system" in err  # names the global
    assert "never falls back" in err
    assert not marker.exists()


def _resume_into_another_head(toy_factory, tmp_path):
    from cnnlab.train.run import train

    model, loaders = toy_factory()
    cfg = TrainConfig(epochs=2, out_dir=str(tmp_path), name="r", quiet=True, precision="32")
    run = train(cfg, model=model, loaders=loaders, callbacks=[StopAfter(1)]).run_dir
    before = {p.name: p.read_bytes() for p in run.glob("*.s*")}
    other, _ = toy_factory()
    other.fc = nn.Linear(16, 3, bias=False)                 # the head differs: no bias
    with pytest.raises(CheckpointMismatchError) as exc:
        train(cfg, model=other, loaders=loaders, resume=run)
    return str(exc.value), before, {p.name: p.read_bytes() for p in run.glob("*.s*")}


def test_a3_resume_into_another_head_is_refused(toy_factory, tmp_path):
    # strict: no run continues with a head the checkpoint did not fill in
    msg, before, after = _resume_into_another_head(toy_factory, tmp_path)
    assert "does not fit" in msg and "last.safetensors" in msg
    assert after == before and "last.state.pt" in after     # no checkpoint was overwritten


def test_a3_resume_mismatch_lists_the_keys(toy_factory, tmp_path):
    msg, _, _ = _resume_into_another_head(toy_factory, tmp_path)
    assert "fc.bias" in msg


class StopAfter:
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, epoch, **_):
        return "stopped" if epoch + 1 == self.epochs else None


def test_a4_old_torch_refuses_pickles_but_reads_safetensors(tmp_path, monkeypatch):
    from cnnlab.models import weights

    net = nn.Linear(3, 2)
    ck.save_checkpoint(tmp_path, "last", net, epoch=1)
    torch.save(net.state_dict(), tmp_path / "w.pth")
    monkeypatch.setattr(weights, "_torch_version", lambda: (2, 5))
    with pytest.raises(InvalidCheckpointError, match=r"CVE-2025-32434.*torch>=2\.10"):
        ck.load_checkpoint(tmp_path, "last")
    with pytest.raises(InvalidCheckpointError, match=r"CVE-2026-24747.*torch>=2\.10"):
        weights.load_weights(nn.Linear(3, 2), tmp_path / "w.pth")
    tensors, _ = ck.load_weights_file(tmp_path / "last.safetensors")      # still fine
    assert torch.equal(tensors["weight"], net.weight.detach())
    fresh = nn.Linear(3, 2)
    weights.load_weights(fresh, tmp_path / "last.safetensors")
    assert torch.equal(fresh.weight, net.weight)


def _mutants(blob: bytes, rng: random.Random, n: int):
    for _ in range(n):
        yield "truncated", blob[:rng.randrange(len(blob))]
        flipped = bytearray(blob)
        i = rng.randrange(len(blob))
        flipped[i] ^= 1 << rng.randrange(8)
        yield "bit-flip", bytes(flipped)
    yield "empty", b""


@pytest.mark.parametrize("which", ["safetensors", "state.pt"])
def test_a5_truncated_flipped_or_empty_checkpoints_are_clear_errors(tmp_path, which):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 3))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(2, 1, 4, 4)).sum().backward()
    opt.step()
    ck.save_checkpoint(tmp_path, "last", net, optimizer=opt, epoch=3, classes=["a", "b", "c"])
    path = tmp_path / f"last.{which}"
    good = path.read_bytes()
    rng = random.Random(which)  # random offsets, the same ones on every run
    errors = 0
    for kind, blob in _mutants(good, rng, 30):
        path.write_bytes(blob)
        try:
            weights, state = ck.load_checkpoint(tmp_path, "last")
        except InvalidCheckpointError as e:
            msg = str(e)
            assert "last." in msg and "\n" not in msg, (kind, msg)
            assert "corrupt" in msg or "incomplete" in msg, (kind, msg)
            if kind == "bit-flip" and which == "safetensors":
                assert "sha256 mismatch" in msg
            errors += 1
            continue
        # A flip in zip padding, a zip timestamp or a pickle memo index changes no value: the
        # state's own digest (over every tensor byte) then still matches, so it loads as saved.
        assert kind == "bit-flip" and which == "state.pt", kind
        assert state["epoch"] == 3 and torch.equal(weights["3.bias"], net[3].bias.detach())
        assert torch.equal(state["optimizer"]["state"][0]["momentum_buffer"],
                           opt.state[net[0].weight]["momentum_buffer"])
    assert errors >= 55     # of 61 mutants; the seeded offsets give 59 or 61 here
    path.write_bytes(good)
    weights, state = ck.load_checkpoint(tmp_path, "last")
    assert state["epoch"] == 3 and torch.equal(weights["3.bias"], net[3].bias.detach())


def test_a5_flipped_bit_in_a_state_tensor_is_detected(tmp_path):
    net = nn.Linear(4, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.ones(1, 4)).sum().backward()
    opt.step()
    ck.save_checkpoint(tmp_path, "last", net, optimizer=opt, epoch=1)
    path = tmp_path / "last.state.pt"
    blob = bytearray(path.read_bytes())
    buf = opt.state[net.weight]["momentum_buffer"].numpy().tobytes()
    i = bytes(blob).find(buf)
    assert i > 0
    blob[i + 1] ^= 0x04     # torch's zip reader would return the wrong momentum silently
    path.write_bytes(bytes(blob))
    with pytest.raises(InvalidCheckpointError, match=r"corrupt \(sha256 mismatch\)"):
        ck.load_checkpoint(tmp_path, "last")


def test_a5_no_automatic_fallback_to_another_tag(tmp_path):
    # `resume --auto` (fall back to the newest complete checkpoint) is not implemented: a bad
    # `last` is an error that names the other tag, so nothing resumes from an older state silently
    net = nn.Linear(2, 2)
    ck.save_checkpoint(tmp_path, "best", net, epoch=1)
    ck.save_checkpoint(tmp_path, "last", net, epoch=2)
    (tmp_path / "last.state.pt").write_bytes(b"")
    with pytest.raises(InvalidCheckpointError, match="other tag"):
        ck.load_checkpoint(tmp_path, "last")
    assert ck.load_checkpoint(tmp_path, "best")[1]["epoch"] == 1
