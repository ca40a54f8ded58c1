"""train(): the run directory, its files, interruption, and the checks at the edges."""

import json

import pytest
import torch
import yaml

import cnnlab
from cnnlab.config import resolve
from cnnlab.errors import ConfigError
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.config import TrainConfig
from cnnlab.train.run import macs_per_image, make_run_dir, train


class RaiseAt:
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, step, **_):
        if step == self.step:
            raise KeyboardInterrupt


def test_run_directory_files(toy, tmp_path):
    model, loaders = toy
    threads = torch.get_num_threads()
    cfg = TrainConfig(epochs=2, lr=0.1, out_dir=str(tmp_path), name="r1", quiet=True,
                      precision="32")
    result = train(cfg, model=model, loaders=loaders)
    run = tmp_path / "r1"
    assert result.run_dir == run
    assert {p.name for p in run.iterdir()} >= {
        "config.yaml", "environment.json", "metrics.csv", "metrics.jsonl", "summary.json",
        "last.safetensors", "last.state.pt", "best.safetensors", "best.state.pt"}
    saved = resolve(TrainConfig, run / "config.yaml")       # the saved config reloads
    assert saved.epochs == 2 and saved.lr == 0.1 and saved.image_size == 8
    env = json.loads((run / "environment.json").read_text())
    assert env["torch"] == torch.__version__ and env["cnnlab"] == cnnlab.__version__
    assert env["seed"] == 0 and env["device"] == "cpu" and env["precision"] == "32"
    assert env["threads"] == 1                                # a tiny model: one thread
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["acc1"] == result.test["acc1"] >= 0.5
    assert summary["test"]["error1"] == pytest.approx(1 - summary["test"]["acc1"])
    cm = torch.tensor(summary["test"]["confusion_matrix"])
    assert cm.shape == (3, 3) and int(cm.sum()) == summary["test"]["images"]
    assert int(cm.trace()) == round(summary["test"]["acc1"] * summary["test"]["images"])
    assert summary["epochs_completed"] == 2 and summary["classes"] == ["a", "b", "c"]
    assert torch.get_num_threads() == threads                 # global setting restored
    with pytest.raises(ConfigError, match="already exists"):
        train(cfg, model=model, loaders=loaders)


def test_same_seed_same_weights_in_deterministic_mode(toy_factory, tmp_path):
    def once(name):
        model, loaders = toy_factory(shift=1)                 # same init, shuffled and shifted
        model.features.append(torch.nn.Dropout(0.3))         # draws from the global generator
        torch.manual_seed(len(name))                          # the run reseeds from cfg.seed
        cfg = TrainConfig(epochs=2, out_dir=str(tmp_path), name=name, quiet=True,
                          deterministic=True, seed=5)
        return train(cfg, model=model, loaders=loaders).model.state_dict()

    a, b = once("a"), once("bb")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.are_deterministic_algorithms_enabled()   # restored after the run


def test_interrupted_run_saves_last_and_skips_test(toy, tmp_path):
    model, loaders = toy
    cfg = TrainConfig(epochs=3, out_dir=str(tmp_path), name="r", quiet=True)
    result = train(cfg, model=model, loaders=loaders, callbacks=[RaiseAt(step=8)])
    assert result.summary["stop_reason"] == "interrupted" and result.summary["signal"] == 2
    assert result.summary["test"] is None
    _, state = load_checkpoint(result.run_dir, "last")
    assert (state["epoch"], state["global_step"], state["batch_in_epoch"]) == (1, 8, 2)
    assert state["config"]["epochs"] == 3 and state["classes"] == ["a", "b", "c"]


def test_edges_fail_clearly(toy, tmp_path):
    model, loaders = toy
    with pytest.raises(ConfigError, match="digits only"):
        train(TrainConfig(data="/some/folder", out_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match="reset_classifier"):
        train(TrainConfig(out_dir=str(tmp_path)), model=type(model)(num_classes=5),
              loaders=loaders)


def test_default_run_names_do_not_collide(tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path))
    a, b = make_run_dir(cfg), make_run_dir(cfg)
    assert a != b and a.name.startswith("lenet5-") and b.parent == tmp_path


def test_macs_of_lenet5():
    # C1 6*25*28*28 + C3 16*150*10*10 + C5 400*120 + F6 120*84 + output 84*10
    model = cnnlab.create_model("lenet5")
    expected = 117_600 + 240_000 + 48_000 + 10_080 + 840
    assert macs_per_image(model, torch.zeros(2, 1, 32, 32)) == expected


def test_packaged_recipe_is_the_default(tmp_path):
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "configs" / "digits-lenet5.yaml"
    assert resolve(TrainConfig, recipe) == TrainConfig(image_size=32)
    assert set(yaml.safe_load(recipe.read_text())) <= set(TrainConfig.__dataclass_fields__)


@pytest.mark.slow  # ~5-20 s on 2 cores: the full default recipe
def test_default_recipe_reaches_98_percent_on_digits(tmp_path):
    result = train(TrainConfig(out_dir=str(tmp_path), quiet=True))
    assert result.test["acc1"] >= 0.98, result.test["acc1"]
    assert result.summary["seconds"] < 60
