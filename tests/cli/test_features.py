"""`cnnlab features`: activations at a named layer into an .npz that `cnnlab baseline` reads."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import cnnlab
from cnnlab.cli import features as features_cli
from cnnlab.cli.main import main
from cnnlab.train.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    torch.manual_seed(0)
    model = cnnlab.create_model("lenet5")
    d = tmp_path_factory.mktemp("run")
    save_checkpoint(d, "best", model, classes=[str(i) for i in range(10)],
                    meta={"model": "lenet5", "input_size": 32, "in_chans": 1,
                          "mean": [0.1], "std": [0.3]})
    return d, model


def test_run_directory_fc7_to_baseline(lenet_run, tmp_path, capsys):
    run_dir, model = lenet_run
    out = tmp_path / "f.npz"
    assert main(["features", "--weights", str(run_dir), "--layer", "fc7", "--limit", "40",
                 "-o", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["model"] == "lenet5" and s["dims"] == 84 and s["train"] == 40
    with np.load(out) as z:
        x = z["x_train"]
        assert x.shape == (40, 84) and z["y_train"].shape == (40,)
        assert list(z["classes"]) == [str(i) for i in range(10)]
    # the run's normalisation was used: recompute the first rows by hand
    from cnnlab.data import load_arrays

    xs, _, _ = load_arrays(None, "train", 32)
    model.eval()
    with torch.no_grad():
        want = model.forward_head(model.forward_features((torch.from_numpy(xs[:3]) - 0.1) / 0.3),
                                  pre_logits=True)
    assert np.allclose(x[:3], want.numpy(), atol=1e-4)
    assert main(["baseline", "--features", str(out), "--classifier", "logistic"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_foreign_state_dict_with_a_map_rule(tmp_path, capsys):
    torch.manual_seed(0)
    src = cnnlab.create_model("resnet20")
    weights = tmp_path / "wrapped.safetensors"
    save_file({f"backbone.{k}": v.contiguous() for k, v in src.state_dict().items()},
              str(weights))
    out = tmp_path / "r.npz"
    assert main(["features", "--model", "resnet20", "--weights", str(weights), "--map-rule",
                 "^backbone\\.=>", "--layer", "stage2", "--limit", "8", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "loaded" in captured.err and "32 features" in captured.out
    with np.load(out) as z:
        assert z["x_train"].shape == (8, 32) and str(z["layer"]) == "stage2"
    # without the rule the keys do not fit: the mismatch listing, as one error line
    assert main(["features", "--model", "resnet20", "--weights", str(weights), "-o",
                 str(out)]) == 2
    assert "missing" in capsys.readouterr().err


def test_user_errors(tmp_path, capsys):
    assert main(["features", "--model", "resnet20", "--layer", "fc7", "-o",
                 str(tmp_path / "x.npz")]) == 2
    assert "pre_logits" in capsys.readouterr().err
    assert main(["features", "--layer", "fc7", "-o", str(tmp_path / "x.npz")]) == 2
    assert "--model" in capsys.readouterr().err


def test_docstring_teaches_usage():
    assert "cnnlab features --" in features_cli.__doc__ and features_cli.VERB == "features"
