"""`cnnlab viz`: each sub-command on a small LeNet-5 checkpoint, JSON output, one-line errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import cnnlab
from cnnlab.cli.main import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory as `cnnlab train` writes it: best.safetensors with the cnnlab header."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("viz")
    run = root / "runs" / "lenet"
    run.mkdir(parents=True)
    model = cnnlab.create_model("lenet5", num_classes=10)
    meta = {"model": "lenet5", "classes": [str(d) for d in range(10)], "in_chans": 1,
            "input_size": 32, "mean": [0.3], "std": [0.3]}
    save_file(model.state_dict(), run / "best.safetensors",
              metadata={"format": "pt", "cnnlab": json.dumps(meta)})
    digit = np.zeros((40, 40), np.uint8)
    digit[8:32, 18:22] = 255                              # a "1", larger than 32x32
    Image.fromarray(digit).save(root / "one.png")
    return run, root / "one.png"


def _run(capsys, *argv):
    code = main(["viz", *map(str, argv), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.mark.parametrize("cmd", ["saliency", "guided", "deconv", "gradcam", "occlusion"])
def test_image_methods(cmd, run_dir, tmp_path, capsys):
    run, image = run_dir
    out = tmp_path / f"{cmd}.png"
    d = _run(capsys, cmd, "--weights", run, image, "--class", 1, "-o", out)
    assert d["class"] == 1 and d["model"] == "lenet5" and 0 <= d["probability"] <= 1
    assert out.read_bytes()[:8] == PNG
    if cmd == "gradcam":
        assert d["layer"] == "features.c3"               # the last convolution
    if cmd == "occlusion":
        assert d["patch"] == 4 and d["stride"] == 2      # S/8 and patch/2 at S = 32


def test_filters_features_and_model_without_checkpoint(run_dir, tmp_path, capsys):
    run, image = run_dir
    d = _run(capsys, "filters", "--weights", run, "-o", tmp_path / "f.png")
    assert d["tiles"] == 6 and d["tile_shape"] == [5, 5] and d["layer"] == "features.c1"
    got = np.asarray(Image.open(tmp_path / "f.png"))
    assert got.shape == ((2 * 5 + 1) * 8, (3 * 5 + 2) * 8, 3)   # 2 x 3 tiles, 1 px gaps, x8
    d = _run(capsys, "features", "--model", "lenet5", image, "--layer", "features.c3",
             "-o", tmp_path / "m.png")
    assert d["maps"] == 16 and d["map_shape"] == [10, 10]


def test_dataset_methods(run_dir, tmp_path, capsys):
    run, _ = run_dir
    d = _run(capsys, "max-patches", "--weights", run, "--layer", "features.c1", "--channel", 2,
             "-k", 4, "--limit", 30, "-o", tmp_path / "p.png")
    assert len(d["patches"]) == 4
    assert all(b[2] - b[0] == 5 and b[3] - b[1] == 5 for b in (p["box"] for p in d["patches"]))
    scores = [p["score"] for p in d["patches"]]
    assert scores == sorted(scores, reverse=True)
    d = _run(capsys, "tsne", "--weights", run, "--limit", 30, "--perplexity", 5,
             "-o", tmp_path / "t.png")
    assert d["images"] == 30 and d["feature_dim"] == 84
    d = _run(capsys, "class-model", "--weights", run, "--class", 7, "--steps", 5,
             "-o", tmp_path / "c.png")
    assert d["score_end"] > d["score_start"]
    assert all((tmp_path / f).read_bytes()[:8] == PNG for f in ("p.png", "t.png", "c.png"))


def test_errors_are_one_line(run_dir, tmp_path, capsys):
    run, image = run_dir
    assert main(["viz", "gradcam", "--weights", str(run), str(image), "--layer", "features.c33",
                 "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "close matches: features.c3" in err and len(err.strip().splitlines()) == 1
    assert main(["viz", "saliency", str(image), "-o", str(tmp_path / "x.png")]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["viz", "saliency", "--weights", str(run), str(image), "--class", "10",
                 "-o", str(tmp_path / "x.png")]) == 2
    assert "0..9" in capsys.readouterr().err
    assert main(["viz"]) == 2
    assert "name a method" in capsys.readouterr().err
