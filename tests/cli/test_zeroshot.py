"""`cnnlab zeroshot train / evaluate / predict` on a tiny CUB-like folder, LeNet-5 backbone."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import zeroshot as zeroshot_cli
from cnnlab.cli.main import main

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30),
           "yellow": (230, 220, 40), "black": (20, 20, 20), "white": (235, 235, 235)}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny ops on a shared 2-core machine: intra-op threads only contend. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    """One class per colour (4 seen, 2 unseen), 3 noisy solid-colour JPEGs and an article each."""
    base = tmp_path_factory.mktemp("cub") / "cub200-2010"
    rng = np.random.default_rng(0)
    for i, (word, rgb) in enumerate(COLOURS.items(), start=1):
        name = f"{i:03d}.{word.title()}_Bird"
        (base / "images" / name).mkdir(parents=True)
        for j in range(3):
            px = np.clip(np.asarray(rgb) + rng.normal(0, 20, (16, 16, 3)), 0, 255)
            Image.fromarray(px.astype(np.uint8)).save(base / "images" / name / f"{j}.jpg")
        (base / "wikipedia").mkdir(exist_ok=True)
        (base / "wikipedia" / f"{name}.txt").write_text(f"the {word} bird is {word} all over.\n")
    (base / "splits.json").write_text(json.dumps(
        {"hard": {"seen_class_ids": [1, 2, 3, 4], "unseen_class_ids": [5, 6]}}))
    return base


@pytest.fixture(scope="module")
def run_dir(cub, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "zs"
    assert main(["zeroshot", "train", "--data", str(cub.parent), "--backbone", "lenet5",
                 "--image-size", "32", "--epochs", "3", "--out", str(out)]) == 0
    return out


def test_train_prints_the_table(run_dir, capsys):
    record = json.loads((run_dir / "run.json").read_text())
    assert record["config"]["backbone"] == "lenet5" and len(record["unseen"]) == 2
    assert {"fc", "baseline_ridge", "baseline_cca"} == set(record["metrics"])


def test_train_feature_flags_reach_the_run(cub, tmp_path, capsys):
    out = tmp_path / "zs"
    assert main(["zeroshot", "train", "--data", str(cub.parent), "--backbone", "resnet18",
                 "--image-size", "32", "--epochs", "1", "--feature-layers", "layer2, layer3",
                 "--no-mirror", "--raw-scores", "--no-baselines", "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["feature_layers"] == ["layer2", "layer3"]
    assert record["config"]["mirror_views"] is False
    assert record["feature_dim"] == 128 + 256 + 512
    assert record["metrics"]["fc"]["centered"] is False
    assert record["n_train_rows"] == record["n_train_images"]


def test_evaluate_json_and_explain(run_dir, capsys):
    assert main(["zeroshot", "evaluate", str(run_dir), "--json", "--explain", "1"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert 0 <= r["metrics"]["fc"]["auc_unseen"] <= 1
    assert r["metrics"]["fc"]["n_unseen_images"] == 6
    names = sorted(p.rsplit("/", 1)[-1] for p in r["written"])
    assert names == ["retrieval_00.png", "words_00.png"]
    assert all(Image.open(p).size[0] > 100 for p in r["written"])


def test_predict_prints_name_and_probability(run_dir, cub, tmp_path, capsys):
    (tmp_path / "a.txt").write_text("a red bird, red all over")
    (tmp_path / "b.txt").write_text("the bird is blue")
    img = cub / "images" / "001.Red_Bird" / "0.jpg"
    assert main(["zeroshot", "predict", str(run_dir), str(img),
                 "--describe", f"scarlet={tmp_path / 'a.txt'}",
                 "--describe", f"azure bird={tmp_path / 'b.txt'}"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert all(re.fullmatch(r"(scarlet|azure bird) \(\d\.\d\d\)", ln) for ln in lines)
    probs = [float(ln.rsplit("(", 1)[1][:-1]) for ln in lines]
    assert probs[0] >= probs[1] and abs(sum(probs) - 1) < 0.02


def test_bad_descriptions_are_one_line_errors(run_dir, cub, tmp_path, capsys):
    img = str(cub / "images" / "001.Red_Bird" / "0.jpg")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "odd.txt").write_text("zebra giraffe")
    for describe, expect in ((f"jay={tmp_path / 'missing.txt'}", "'jay'.*does not exist"),
                             (f"jay={tmp_path / 'empty.txt'}", "'jay'.*empty"),
                             (f"jay={tmp_path / 'odd.txt'}", "'jay'.*no word"),
                             ("no-equals-sign", "NAME=FILE")):
        assert main(["zeroshot", "predict", str(run_dir), img, "--describe", describe]) == 2
        err = capsys.readouterr().err
        assert re.search(expect, err) and len(err.strip().splitlines()) == 1


def test_overlapping_split_is_an_error(cub, tmp_path, capsys):
    (tmp_path / "split.json").write_text(json.dumps({"seen_class_ids": [1, 2],
                                                     "unseen_class_ids": [2, 3]}))
    assert main(["zeroshot", "train", "--data", str(cub.parent), "--split",
                 str(tmp_path / "split.json"), "--out", str(tmp_path / "r")]) == 2
    assert "both seen and unseen" in capsys.readouterr().err


def test_docstring_teaches_usage():
    assert "cnnlab zeroshot predict" in zeroshot_cli.__doc__ and zeroshot_cli.VERB == "zeroshot"
