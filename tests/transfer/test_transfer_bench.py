"""benchmarks/transfer_bench.py on a tiny synthetic train/ + test/ folder and a LeNet-5 source."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "transfer_bench.py"
COLOURS = [(220, 30, 30), (30, 30, 220), (30, 200, 30)]


def _load_bench():
    spec = importlib.util.spec_from_file_location("transfer_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_folder(root: Path, n_train: int = 8, n_test: int = 3, size: int = 32) -> Path:
    """CIFAR-like layout: train/<class>/*.jpg and test/<class>/*.jpg, one colour per class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for k, rgb in enumerate(COLOURS):
            d = root / split / f"c{k}"
            d.mkdir(parents=True)
            for j in range(n):
                px = np.clip(np.asarray(rgb) + rng.normal(0, 30, (size, size, 3)), 0, 255)
                Image.fromarray(px.astype(np.uint8)).save(d / f"{j:04d}.jpg")
    return root


@pytest.fixture(scope="module")
def bench():
    return _load_bench()


@pytest.fixture(scope="module")
def result(tmp_path_factory, bench):
    tmp = tmp_path_factory.mktemp("bench")
    data = make_folder(tmp / "data")
    with pytest.MonkeyPatch.context() as mp:
        # curves.png is nothing to this test and Matplotlib would take most of its time
        mp.setattr("cnnlab.train.plots.save_curves", lambda rows, path: None)
        return _run(bench, tmp, data)


def _run(bench, tmp, data):
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.run import train

    train(TrainConfig(model="lenet5", data=str(data), epochs=1, out_dir=str(tmp / "runs"),
                      name="src", quiet=True, monitor_every=0))
    out = tmp / "result.json"
    assert bench.main(["--source", str(tmp / "runs" / "src"), "--data", str(data),
                       "--per-class", "4", "--val-per-class", "2", "--test-per-class", "2",
                       "--image-size", "32", "--epochs", "1", "--seeds", "2",
                       "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_every_strategy_reported(result, bench):
    assert list(result["summary"]) == list(bench.STRATEGIES)
    assert len(result["runs"]) == 2 * len(bench.STRATEGIES)
    for r in result["runs"]:
        assert 0 <= r["test_acc"] <= 1
        assert 0 < r["trainable_params"] <= r["total_params"]
    assert result["target"] | {"train": 12, "val": 6, "test": 6} == result["target"]
    assert result["source"]["model"] == "lenet5"


def test_linear_probe_leaves_backbone_unchanged(result):
    by = {r["strategy"]: r for r in result["runs"] if r["seed"] == 0}
    assert by["linear-probe"]["changed_weights"] == ["classifier"]
    assert by["linear-probe"]["changed_bn_stats"] == []
    # the same check sees the backbone move when everything trains
    assert {"stem", "classifier"} <= set(by["full"]["changed_weights"])
    assert "stem" not in by["top-k-layers"]["changed_weights"]
    assert by["linear-probe"]["trainable_params"] < by["top-k-layers"]["trainable_params"] \
        < by["full"]["trainable_params"] == by["scratch"]["trainable_params"]


def test_changed_groups_tells_weights_from_batchnorm_statistics(bench):
    import torch

    from cnnlab.models import create_model
    from cnnlab.transfer.groups import layer_groups

    model = create_model("resnet18", num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups = layer_groups(model)
    assert bench.changed_groups(before, model, groups) == ([], [])
    with torch.no_grad():
        model.layer2[0].bn1.running_mean += 1   # a buffer, not a parameter
        model.fc.bias += 1
    assert bench.changed_groups(before, model, groups) == (["classifier"], ["stage2"])


def test_split_is_stratified_disjoint_and_seeded(tmp_path, bench):
    data = make_folder(tmp_path / "data", n_train=8, n_test=5)
    spec = bench.select_split(data, per_class=3, val_per_class=2, test_per_class=0)
    assert [spec.labels["train"].count(k) for k in range(3)] == [3, 3, 3]
    assert [spec.labels["val"].count(k) for k in range(3)] == [2, 2, 2]
    assert len(spec.files["test"]) == 15                       # 0: every test/ image
    assert not set(spec.files["train"]) & set(spec.files["val"])
    assert all("/train/" in f or f.startswith("train/") for f in spec.files["val"])
    again = bench.select_split(data, per_class=3, val_per_class=2, test_per_class=0)
    assert again.files == spec.files
    other = bench.select_split(data, per_class=3, val_per_class=2, test_per_class=0, seed=1)
    assert other.files["train"] != spec.files["train"]


def test_too_few_images_is_a_clear_error(tmp_path, bench):
    from cnnlab.errors import DataError

    data = make_folder(tmp_path / "data", n_train=4, n_test=1)
    with pytest.raises(DataError, match="--per-class 4"):
        bench.select_split(data, per_class=4, val_per_class=1, test_per_class=0)
