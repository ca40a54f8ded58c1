"""`cnnlab baseline`: classic features + linear classifier from the command line."""

import json

import numpy as np

from cnnlab.cli import baseline as baseline_cli
from cnnlab.cli.main import main


def test_hog_on_digits_json(capsys):
    assert main(["baseline", "--image-size", "16", "--classifier", "logistic", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["features"] == "hog" and r["data"].startswith("digits")
    assert r["n_train"] + r["n_test"] == 1797
    assert r["n_features"] == 3 * 3 * 4 * 9              # 16x16 image, 4x4 cells, 2x2 blocks
    assert r["accuracy"] > 0.9


def test_feature_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    x = np.c_[y * 4.0, np.zeros(60)] + rng.normal(size=(60, 2))
    path = tmp_path / "feats.npz"
    np.savez(path, x_train=x[::2], y_train=y[::2], x_test=x[1::2], y_test=y[1::2])
    assert main(["baseline", "--features", str(path)]) == 0
    out = capsys.readouterr().out
    assert "precomputed (2 dims" in out and "accuracy" in out


def test_bad_features_are_user_errors(tmp_path, capsys):
    assert main(["baseline", "--features", "sift"]) == 2
    assert "hog, gist, pixels" in capsys.readouterr().err
    assert main(["baseline", "--features", str(tmp_path / "none.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_docstring_teaches_usage():
    assert "cnnlab baseline" in baseline_cli.__doc__ and baseline_cli.VERB == "baseline"


def _colour_tree(root, n=12):
    from PIL import Image

    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name, rgb in colours.items():
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                arr = np.clip(np.array(rgb) + rng.normal(0, 20, (16, 16, 3)), 0, 255)
                # stripes whose orientation depends on the class, so HoG has something to see
                if name == "red":
                    arr[:, ::4] = 0
                elif name == "green":
                    arr[::4, :] = 0
                Image.fromarray(arr.astype(np.uint8)).save(d / f"{i}.png")


def test_data_folder_with_test_split(tmp_path, capsys):
    _colour_tree(tmp_path / "set")
    assert main(["baseline", "--data", str(tmp_path / "set"), "--features", "pixels",
                 "--image-size", "16", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n_train"] == 36 and r["n_test"] == 36
    assert r["accuracy"] > 0.9


def test_data_with_feature_file_is_an_error(tmp_path, capsys):
    assert main(["baseline", "--data", str(tmp_path), "--features", "x.npz"]) == 2
    assert "--data goes with" in capsys.readouterr().err
