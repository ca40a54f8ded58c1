"""evaluate_runs / write_report: a digits run scores as training reported; ensembles; files."""

import csv
import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cnnlab.errors import ConfigError, DataError
from cnnlab.evaluate.evaluation import evaluate_runs, public, score, write_report
from toys import digits_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return digits_run(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def result(run_dir):
    return evaluate_runs(run_dir)


def test_scores_match_the_training_report(run_dir, result):
    test = json.loads((run_dir / "summary.json").read_text())["test"]
    m = result["combined"]
    assert result["members"][0] is m and result["ensemble"] is None
    assert m["images"] == test["images"] == 360
    # the run was evaluated in fp32 too, so the same preprocessing gives the same numbers
    assert m["acc1"] == pytest.approx(test["acc1"]) and m["acc5"] == pytest.approx(test["acc5"])
    assert m["loss"] == pytest.approx(test["loss"], rel=1e-4)
    assert m["confusion_matrix"] == test["confusion_matrix"]
    assert m["error1"] == pytest.approx(1 - m["acc1"])
    cm = np.array(m["confusion_matrix"])
    assert cm.sum() == 360 and np.trace(cm) == round(m["acc1"] * 360)


def test_val_split_is_the_runs_held_out_slice(run_dir):
    res = evaluate_runs(run_dir, split="val")
    # 1,437 training digits, 10% held out as train.batches.digits_loaders does
    assert res["combined"]["images"] == 144 and res["split"] == "val"
    with pytest.raises(ConfigError, match="'val' or 'test'"):
        evaluate_runs(run_dir, split="train")


def test_score_by_hand():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    labels = torch.tensor([0, 1, 1])
    s = score(probs, labels, ["a", "b", "c"], topk=5)            # k capped at 3 classes
    assert s["acc1"] == pytest.approx(1 / 3) and s["acc3"] == 1.0 and "acc5" not in s
    assert s["loss"] == pytest.approx(-(np.log(0.7) + np.log(0.3) + np.log(0.4)) / 3)
    assert s["per_class"]["recall"] == [1.0, 0.0, 0.0]
    assert s["per_class"]["precision"] == [0.5, 0.0, 0.0]


def test_ensemble_of_identical_runs_equals_each_member(run_dir, result, tmp_path):
    twin = tmp_path / "twin"
    shutil.copytree(run_dir, twin)
    res = evaluate_runs([run_dir, twin])
    assert len(res["members"]) == 2 and res["combined"] is res["ensemble"]
    for key in ("acc1", "acc5", "loss"):
        assert res["ensemble"][key] == pytest.approx(result["combined"][key]), key
        assert res["members"][1][key] == pytest.approx(result["combined"][key]), key
    assert res["ensemble"]["confusion_matrix"] == result["combined"]["confusion_matrix"]


def test_ensemble_averages_softmax(run_dir, tmp_path):
    import cnnlab
    from cnnlab.evaluate.predictor import load
    from cnnlab.train.checkpoint import save_checkpoint

    other = tmp_path / "other"
    torch.manual_seed(1)
    p = load(run_dir)
    save_checkpoint(other, "best", cnnlab.create_model("lenet5"), classes=p.classes,
                    meta={"model": "lenet5", "input_size": 32, "in_chans": 1,
                          "mean": list(p.mean), "std": list(p.std)})
    shutil.copy(run_dir / "config.yaml", other)
    res = evaluate_runs([run_dir, other])
    mean = res["_arrays"]["probs"]
    q = load(other)
    x = res["_arrays"]["pixels"]
    expected = (p.probabilities(p.normalize(x)) + q.probabilities(q.normalize(x))) / 2
    assert torch.allclose(mean, expected, atol=1e-6)
    assert res["members"][0]["acc1"] != res["members"][1]["acc1"]


def test_tta_runs_on_the_whole_split(run_dir, result):
    for mode in ("flip", "tencrop"):
        res = evaluate_runs(run_dir, tta=mode)
        assert res["tta"] == mode and res["combined"]["images"] == 360
        assert torch.allclose(res["_arrays"]["probs"].sum(1), torch.ones(360), atol=1e-5)
    with pytest.raises(ConfigError):
        evaluate_runs(run_dir, tta="mirror")


def test_report_files(result, tmp_path):
    written = write_report(result, tmp_path / "out")
    names = {f.name for f in written}
    assert names == {"metrics.json", "confusion_matrix.csv", "confusion_matrix.png",
                     "per_class.csv", "confident_errors.csv", "confident_errors.png"}
    out = tmp_path / "out"
    rows = list(csv.reader(open(out / "confusion_matrix.csv")))
    assert rows[0][1:] == result["classes"]
    assert [[int(v) for v in r[1:]] for r in rows[1:]] == result["combined"]["confusion_matrix"]
    per = list(csv.DictReader(open(out / "per_class.csv")))
    assert [float(r["recall"]) for r in per] == pytest.approx(
        result["combined"]["per_class"]["recall"], abs=1e-4)
    errs = list(csv.DictReader(open(out / "confident_errors.csv")))
    probs = [float(r["probability"]) for r in errs]
    assert len(errs) == 16 and probs == sorted(probs, reverse=True)
    assert all(r["true"] != r["predicted"] for r in errs)
    for png in ("confusion_matrix.png", "confident_errors.png"):
        assert Image.open(out / png).size[0] > 200
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(public(result)))


def test_folder_run_maps_classes_by_name(tmp_path):
    """A 3-class RGB folder run scored on a folder holding two of its classes."""
    import cnnlab
    from cnnlab.train.checkpoint import save_checkpoint

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for split in ("train", "val"):
        for c in ("green", "red"):                     # the run also knows "blue", index 0
            (data / split / c).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(
                    data / split / c / f"{i}.png")
    run = tmp_path / "run"
    save_checkpoint(run, "best", cnnlab.create_model("lenet5", num_classes=3, in_chans=3),
                    classes=["blue", "green", "red"],
                    meta={"model": "lenet5", "input_size": 32, "in_chans": 3,
                          "mean": [0.5] * 3, "std": [0.25] * 3})
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "lenet5", "data": str(data)}))
    res = evaluate_runs(run, split="val", topk=2)
    assert res["combined"]["images"] == 6
    assert res["combined"]["per_class"]["support"] == [0, 3, 3]
    assert res["_arrays"]["pixels"].shape == (6, 3, 32, 32)
    with pytest.raises(DataError, match="--split val"):
        evaluate_runs(run)                              # no test split in this folder


def test_plain_and_fast_models_score_alike(run_dir, result):
    plain = evaluate_runs(run_dir, fast=False)["combined"]
    m = result["combined"]
    assert plain["confusion_matrix"] == m["confusion_matrix"]
    assert plain["loss"] == pytest.approx(m["loss"], rel=1e-5)
