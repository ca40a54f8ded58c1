"""`cnnlab train` on the embedded digits: run directory, printed accuracy, config layering."""

import json

import pytest
import yaml

from cnnlab.cli.main import main
from cnnlab.train import run as run_module
from cnnlab.train.callbacks import StopOnSignal


def test_train_digits_two_epochs(tmp_path, capsys):
    rc = main(["train", "--epochs", "2", "--out-dir", str(tmp_path), "--name", "d", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    run = tmp_path / "d"
    for name in ("config.yaml", "environment.json", "metrics.csv", "metrics.jsonl",
                 "summary.json", "last.safetensors", "last.state.pt", "best.safetensors"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    acc = summary["test"]["acc1"]
    assert f"test accuracy {100 * acc:.2f}%" in out and str(run) in out
    assert acc > 0.3                      # two epochs of LeNet-5: well above chance (10%)
    assert summary["model"] == "lenet5" and summary["data"]["test"] == 360


def test_config_file_then_flags_and_json(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("epochs: 4\nlr: 0.03\noptimizer: nesterov\nbatch_size: 128\n")
    rc = main(["train", "--config", str(recipe), "--epochs", "1", "--set", "random_shift=0",
               "--out-dir", str(tmp_path), "--name", "j", "--quiet", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)             # stdout is the JSON only
    assert summary["epochs_completed"] == 1
    saved = yaml.safe_load((tmp_path / "j" / "config.yaml").read_text())
    assert (saved["epochs"], saved["lr"], saved["optimizer"], saved["batch_size"],
            saved["random_shift"]) == (1, 0.03, "nesterov", 128, 0)


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    assert main(["train", "--set", "lr_stepepochs=3", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'lr_step_epochs'" in err and "Traceback" not in err
    assert main(["train", "--optimizer", "adma", "--out-dir", str(tmp_path)]) == 2
    assert "did you mean 'adam'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())                        # nothing written on a bad config


def test_interrupt_saves_checkpoint_and_exits_130(tmp_path, capsys, monkeypatch):
    class CtrlCAtStep3(StopOnSignal):                           # as if Ctrl-C came during step 3
        def on_batch_end(self, step=0, **kw):
            return "interrupted" if step == 3 else None

    monkeypatch.setattr(run_module, "StopOnSignal", CtrlCAtStep3)
    rc = main(["train", "--epochs", "2", "--out-dir", str(tmp_path), "--name", "i", "--quiet"])
    assert rc == 130
    assert "checkpoint saved" in capsys.readouterr().err
    assert (tmp_path / "i" / "last.safetensors").is_file()
    summary = json.loads((tmp_path / "i" / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["test"] is None


@pytest.mark.slow  # ~5-10 s: a fresh interpreter imports torch and the zoo
def test_sigterm_in_a_real_process_saves_last(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "train", "--epochs", "50",
                             "--out-dir", str(tmp_path), "--name", "s", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "s" / "metrics.csv"
    deadline = time.monotonic() + 120
    while not metrics.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)                                      # wait for the first epoch
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in err and "checkpoint saved" in err
    from cnnlab.train.checkpoint import load_checkpoint

    _, state = load_checkpoint(tmp_path / "s", "last")
    assert state["global_step"] >= 21 and state["epoch"] < 50   # past epoch 1, well before 50


def _image_folder(root, per_class=8):
    """ROOT/<colour>/i.png: 16x16 noisy squares in three colours, plus one broken file."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, rgb in {"blue": (30, 60, 220), "green": (40, 200, 60), "red": (220, 40, 30)}.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            a = rng.integers(0, 40, (16, 16, 3), dtype=np.uint8)
            r, c = rng.integers(0, 8, 2)
            a[r:r + 8, c:c + 8] = rgb
            Image.fromarray(a).save(root / name / f"{i}.png")
    (root / "red" / "broken.png").write_bytes(b"not an image")
    return root


def test_train_on_a_folder_then_resume(tmp_path, capsys, monkeypatch):
    data = _image_folder(tmp_path / "shapes")

    class CtrlCAtStep5(StopOnSignal):
        def on_batch_end(self, step=0, **kw):
            return "interrupted" if step == 5 else None

    monkeypatch.setattr(run_module, "StopOnSignal", CtrlCAtStep5)
    args = ["train", "--data", str(data), "--epochs", "3", "--batch-size", "6", "--quiet",
            "--out-dir", str(tmp_path), "--name", "f", "--set", "test_fraction=0.25"]
    assert main(args) == 130
    run = tmp_path / "f"
    assert {"split.json", "skipped.txt", "skipped.json", "classes.json"} <= {
        p.name for p in run.iterdir()}
    monkeypatch.setattr(run_module, "StopOnSignal", StopOnSignal)
    capsys.readouterr()

    assert main(["train", "--resume", str(run), "--batch-size", "8"]) == 2
    err = capsys.readouterr().err
    assert "batch_size: 6 -> 8" in err and "--force" in err and "Traceback" not in err

    assert main(["train", "--resume", str(run), "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_completed"] == 3 and summary["non_exact_resume"] is False
    assert summary["resumes"][0]["batch_in_epoch"] == 2        # 3 batches an epoch, stopped at 5
    assert summary["data"]["channels"] == 3 and summary["test"]["images"] >= 6
    assert summary["classes"] == ["blue", "green", "red"]


def test_nonfinite_loss_is_a_clear_stop(tmp_path, capsys):
    rc = main(["train", "--epochs", "1", "--lr", "1e30", "--precision", "32", "--quiet",
               "--out-dir", str(tmp_path), "--name", "nan"])
    err = capsys.readouterr().err
    assert rc == 1 and "loss became" in err and "lower --lr" in err
    summary = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert summary["stop_reason"] == "nonfinite_loss"
    assert not (tmp_path / "nan" / "last.safetensors").exists()   # no good epoch to keep


def test_resume_flags_need_a_run(tmp_path, capsys):
    assert main(["train", "--force", "--out-dir", str(tmp_path)]) == 2
    assert "--force only applies with --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "missing")]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def test_regularisation_and_step_flags_reach_the_config():
    import argparse

    from cnnlab.cli.train import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--l1", "1e-5", "--dropout", "0.3", "--init", "kaiming",
                              "--clip-grad-norm", "2", "--accumulate", "4", "--model", "alexnet"])
    cfg = config_from_args(args)
    assert (cfg.l1, cfg.dropout, cfg.init, cfg.clip_grad_norm, cfg.accumulate) == (
        1e-5, 0.3, "kaiming", 2.0, 4)


def test_dropout_on_a_model_without_one_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--dropout", "0.3", "--epochs", "1", "--out-dir", str(tmp_path),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "lenet5 has no dropout" in err and "Traceback" not in err
