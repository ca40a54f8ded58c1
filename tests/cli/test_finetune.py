"""`cnnlab finetune`: strategies end to end on a tiny image folder, the record, errors, resume."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import cnnlab
from cnnlab.cli.main import main
from cnnlab.train import run as run_module
from cnnlab.train.callbacks import StopOnSignal

COLOURS = {"blue": (30, 60, 220), "green": (40, 200, 60), "red": (220, 40, 30)}
FAST = ["--image-size", "16", "--precision", "32", "--threads", "1", "--quiet"]


@pytest.fixture
def shapes(tmp_path):
    """ROOT/<colour>/i.png: 8 coloured squares per class on a noisy dark 16x16 background."""
    rng = np.random.default_rng(0)
    for k, (name, rgb) in enumerate(COLOURS.items()):
        (tmp_path / "shapes" / name).mkdir(parents=True)
        for i in range(8):
            a = rng.integers(0, 40, (16, 16, 3), dtype=np.uint8)
            r, c = rng.integers(0, 8, 2)
            a[r:r + 8, c:c + 8] = rgb
            Image.fromarray(a).save(tmp_path / "shapes" / name / f"{i}.png")
    return tmp_path / "shapes"


@pytest.fixture
def source(tmp_path):
    """A resnet20 state dict as a plain .pt file (a foreign weights file: needs --model)."""
    torch.manual_seed(0)
    state = cnnlab.create_model("resnet20").state_dict()
    torch.save(state, tmp_path / "src.pt")
    return tmp_path / "src.pt", state


def _finetune(tmp_path, name, *args):
    return main(["finetune", *args, *FAST, "--out-dir", str(tmp_path / "runs"), "--name", name])


def test_auto_picks_linear_probe_says_why_and_trains_only_the_classifier(tmp_path, shapes,
                                                                          source, capsys):
    path, state = source
    rc = _finetune(tmp_path, "lp", "--weights", str(path), "--model", "resnet20",
                   "--data", str(shapes), "--epochs", "2")
    out = capsys.readouterr().out
    assert rc == 0
    assert "strategy linear-probe (auto: little data (21 images < 1,000)" in out
    assert "frozen stem, stage1, stage2, stage3" in out
    run = tmp_path / "runs" / "lp"
    for f in ("finetune.json", "config.yaml", "summary.json", "last.safetensors", "split.json"):
        assert (run / f).is_file(), f
    rec = json.loads((run / "finetune.json").read_text())
    assert (rec["strategy"], rec["requested"], rec["trainable"]) == (
        "linear-probe", "auto", ["classifier"])
    assert rec["reason"].startswith("little data") and rec["num_classes"] == 3
    # normalised as the source network expects (resnet20's CIFAR statistics), not the data's
    info = cnnlab.model_info("resnet20")
    assert rec["normalisation"] == {"from": "source", "mean": list(info.mean),
                                    "std": list(info.std)}
    weights = load_file(run / "last.safetensors")
    changed = {k for k in state if k in weights and not torch.equal(weights[k], state[k])}
    assert changed == {"fc.weight", "fc.bias"}          # BN statistics included
    assert weights["fc.weight"].shape == (3, 64)

    # the run is itself a source: model, input size and normalisation come with it
    rc = _finetune(tmp_path, "top", "--weights", str(run), "--data", str(shapes),
                   "--strategy", "top-k-layers", "--top-k", "2", "--epochs", "1")
    assert rc == 0
    rec2 = json.loads((tmp_path / "runs" / "top" / "finetune.json").read_text())
    assert rec2["source"]["model"] == "resnet20" and rec2["trainable"] == ["stage3", "classifier"]
    assert rec2["reason"].startswith("requested") and rec2["normalisation"]["mean"] == list(
        info.mean)


def test_full_with_lr_mult_records_the_rates_and_moves_the_backbone(tmp_path, shapes, source,
                                                                    capsys):
    path, state = source
    rc = _finetune(tmp_path, "full", "--weights", str(path), "--model", "resnet20",
                   "--data", str(shapes), "--strategy", "full", "--lr-mult", "backbone=0.1",
                   "--lr", "0.1", "--epochs", "1", "--json")
    captured = capsys.readouterr()
    assert rc == 0
    summary = json.loads(captured.out)                  # stdout is the JSON only
    assert "strategy full (requested" in captured.err
    rec = json.loads((tmp_path / "runs" / "full" / "finetune.json").read_text())
    assert rec["group_lr"]["classifier"] == pytest.approx(0.1)
    assert all(rec["group_lr"][g] == pytest.approx(0.01)
               for g in ("stem", "stage1", "stage2", "stage3"))
    weights = load_file(tmp_path / "runs" / "full" / "last.safetensors")
    assert not torch.equal(weights["conv1.weight"], state["conv1.weight"])
    assert summary["model"] == "resnet20" and summary["epochs_completed"] == 1


def test_weights_of_another_architecture_give_the_mismatch_listing(tmp_path, shapes, capsys):
    torch.save(cnnlab.create_model("lenet5").state_dict(), tmp_path / "lenet.pt")
    rc = _finetune(tmp_path, "bad", "--weights", str(tmp_path / "lenet.pt"), "--model",
                   "resnet20", "--data", str(shapes))
    err = capsys.readouterr().err
    assert rc == 2 and "does not fit resnet20" in err and "Traceback" not in err
    assert "missing" in err and "unexpected" in err and "layer1.0.conv1.weight" in err
    assert not (tmp_path / "runs").exists()             # nothing written
    assert _finetune(tmp_path, "none", "--data", str(shapes)) == 2
    assert "needs --weights" in capsys.readouterr().err


def test_resume_after_an_interruption_ends_as_an_uninterrupted_run(tmp_path, shapes, source,
                                                                    capsys, monkeypatch):
    path, _ = source
    args = ["--weights", str(path), "--model", "resnet20", "--data", str(shapes),
            "--strategy", "gradual", "--epochs", "3", "--batch-size", "8", "--deterministic"]
    assert _finetune(tmp_path, "whole", *args) == 0

    class CtrlCAtStep4(StopOnSignal):                   # 3 batches an epoch: mid epoch 2
        def on_batch_end(self, step=0, **kw):
            return "interrupted" if step == 4 else None

    monkeypatch.setattr(run_module, "StopOnSignal", CtrlCAtStep4)
    assert _finetune(tmp_path, "part", *args) == 130
    monkeypatch.setattr(run_module, "StopOnSignal", StopOnSignal)
    part = tmp_path / "runs" / "part"
    capsys.readouterr()
    # the fine-tuning settings live in finetune.json: `cnnlab train --resume` points here
    assert main(["train", "--resume", str(part)]) == 2
    assert f"cnnlab finetune --resume {part}" in capsys.readouterr().err
    assert main(["finetune", "--resume", str(part), "--strategy", "full"]) == 2
    assert "drop --strategy" in capsys.readouterr().err

    assert main(["finetune", "--resume", str(part), "--quiet"]) == 0
    assert "resuming" in capsys.readouterr().out
    a = load_file(tmp_path / "runs" / "whole" / "last.safetensors")
    b = load_file(part / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    summary = json.loads((part / "summary.json").read_text())
    assert summary["epochs_completed"] == 3 and summary["non_exact_resume"] is False


def test_key_map_rules_rename_a_prefixed_state_dict(tmp_path, shapes, source, capsys):
    _, state = source
    torch.save({f"backbone.{k}": v for k, v in state.items()}, tmp_path / "prefixed.pt")
    base = ["--weights", str(tmp_path / "prefixed.pt"), "--model", "resnet20", "--data",
            str(shapes), "--strategy", "linear-probe", "--epochs", "1"]
    assert _finetune(tmp_path, "raw", *base) == 2            # without the rule nothing fits
    assert "does not fit" in capsys.readouterr().err
    assert _finetune(tmp_path, "mapped", *base, "--key-map", r"^backbone\.=>") == 0
    rec = json.loads((tmp_path / "runs" / "mapped" / "finetune.json").read_text())
    assert rec["source"]["key_map"] == {"layout": "auto", "rules": [r"^backbone\.=>"]}
    weights = load_file(tmp_path / "runs" / "mapped" / "last.safetensors")
    assert torch.equal(weights["layer2.0.conv1.weight"], state["layer2.0.conv1.weight"])
