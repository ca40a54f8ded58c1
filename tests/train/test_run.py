"""train(): the run directory, its files, interruption, and the checks at the edges."""

import dataclasses
import json

import pytest
import torch
import yaml

import cnnlab
from cnnlab.config import resolve
from cnnlab.errors import CheckpointMismatchError, ConfigError
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.config import TrainConfig
from cnnlab.train.run import macs_per_image, make_run_dir, train
from toys import RaiseAt


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
        "last.safetensors", "last.state.pt", "best.safetensors", "best.state.pt", "curves.png"}
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
    with pytest.raises(ConfigError, match="does not exist"):
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


class StopAfterEpoch:
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, **_):
        return "stopped" if epoch + 1 == self.epoch else None


class StopAtStep:
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, step, **_):
        return "stopped" if step == self.step else None


def _state_tensors(state, prefix=""):
    """Every tensor in a nested checkpoint state, keyed by its path."""
    if isinstance(state, torch.Tensor):
        return {prefix: state}
    items = state.items() if isinstance(state, dict) else (
        enumerate(state) if isinstance(state, (list, tuple)) else [])
    out = {}
    for k, v in items:
        out.update(_state_tensors(v, f"{prefix}/{k}"))
    return out


def tiny_digits():
    """The digits' batches cut to 192 train / 64 val / 64 test images (3 batches an epoch)."""
    from cnnlab.train.batches import Loaders, TensorBatches, digits_loaders

    d = digits_loaders(image_size=32, val_fraction=0.1, shift=2)
    train = TensorBatches(d.train.x[:192], d.train.y[:192], 64, shuffle=True, seed=0, shift=2,
                          fill=d.train.fill)
    return Loaders(train, TensorBatches(d.val.x[:64], d.val.y[:64], 64),
                   TensorBatches(d.test.x[:64], d.test.y[:64], 64), d.classes, d.mean, d.std,
                   d.info)


def test_resume_on_digits_is_bit_exact(tmp_path):
    import copy

    from cnnlab.train.run import resume_config

    data = tiny_digits()              # LeNet-5 (built by train from cfg.model), tiny epochs
    cfg = TrainConfig(epochs=4, deterministic=True, quiet=True, precision="32",
                      out_dir=str(tmp_path), name="full")
    full = train(cfg, loaders=copy.deepcopy(data))
    part = train(dataclasses.replace(cfg, name="part"), loaders=copy.deepcopy(data),
                 callbacks=[StopAfterEpoch(2)])
    assert part.summary["epochs_completed"] == 2 and part.summary["model"] == "lenet5"
    cfg2, changes = resume_config(part.run_dir)
    assert changes == {} and cfg2 == dataclasses.replace(cfg, name="part", image_size=32)
    resumed = train(cfg2, loaders=copy.deepcopy(data), resume=part.run_dir)

    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = _state_tensors(load_checkpoint(full.run_dir)[1]["optimizer"])
    sb = _state_tensors(load_checkpoint(resumed.run_dir)[1]["optimizer"])
    assert len(sa) >= 10 and sa.keys() == sb.keys()              # momentum buffers included
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    drop = ("seconds", "images_per_s")
    rows = [{k: v for k, v in r.items() if k not in drop} for r in full.history]
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.history] == rows
    assert resumed.test == full.test and resumed.summary["epochs_completed"] == 4
    lines = (resumed.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert resumed.summary["non_exact_resume"] is False
    assert resumed.summary["resumes"][0]["epoch"] == 2


def test_resume_mid_epoch_gives_the_same_weights(toy_factory, tmp_path):
    def run(name, callbacks=(), resume=None):
        model, loaders = toy_factory(shift=1)                  # 6 batches an epoch
        loaders.train.flip = True
        cfg = TrainConfig(epochs=3, out_dir=str(tmp_path), name=name, quiet=True,
                          deterministic=True, precision="32")
        return train(cfg, model=model, loaders=loaders, callbacks=callbacks, resume=resume)

    full = run("full")
    part = run("part", [StopAtStep(9)])                         # 3 batches into epoch 2
    _, state = load_checkpoint(part.run_dir)
    assert (state["epoch"], state["global_step"], state["batch_in_epoch"]) == (1, 9, 3)
    resumed = run("part", resume=part.run_dir)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.summary["epochs_completed"] == 3


def test_resume_refuses_changed_settings_unless_forced(toy, tmp_path):
    from cnnlab.train.run import resume_config

    model, loaders = toy
    cfg = TrainConfig(epochs=2, out_dir=str(tmp_path), name="r", quiet=True, precision="32")
    run_dir = train(cfg, model=model, loaders=loaders).run_dir
    with pytest.raises(ConfigError, match=r"batch_size: 64 -> 32.*--force"):
        resume_config(run_dir, {"batch_size": 32, "quiet": False})
    with pytest.raises(ConfigError, match=r"already ran all 2 epoch\(s\)"):
        train(resume_config(run_dir)[0], model=model, loaders=loaders, resume=run_dir)
    cfg3, changes = resume_config(run_dir, {"epochs": 3, "name": "ignored"}, force=True)
    assert changes == {"epochs": (2, 3)} and cfg3.epochs == 3
    result = train(cfg3, model=model, loaders=loaders, resume=run_dir, resume_changes=changes)
    assert result.summary["non_exact_resume"] is True and result.summary["epochs_completed"] == 3
    _, state = load_checkpoint(run_dir)
    assert state["non_exact_resume"] is True and state["resumes"][0]["changes"] == {
        "epochs": [2, 3]}
    assert resume_config(run_dir, {"quiet": False}) == (dataclasses.replace(cfg3, quiet=False), {})
    cfg4, changes = resume_config(run_dir, {"epochs": 4, "optimizer": "adam"}, force=True)
    result = train(cfg4, model=model, loaders=loaders, resume=run_dir, resume_changes=changes)
    assert result.summary["epochs_completed"] == 4                 # a fresh Adam state
    assert "exp_avg" in str(load_checkpoint(run_dir)[1]["optimizer"]["state"].get(0, {}).keys())
    with pytest.raises(ConfigError, match="no config.yaml"):
        resume_config(tmp_path / "nowhere")
    loaders.classes = ["a", "b", "zebra"]                       # other data, same shapes
    with pytest.raises(CheckpointMismatchError, match="classes"):
        train(cfg3, model=model, loaders=loaders, resume=run_dir)


def test_resume_from_a_corrupt_checkpoint_is_a_clear_error(toy, tmp_path):
    from cnnlab.errors import InvalidCheckpointError

    model, loaders = toy
    cfg = TrainConfig(epochs=3, out_dir=str(tmp_path), name="c", quiet=True, precision="32")
    run_dir = train(cfg, model=model, loaders=loaders, callbacks=[StopAfterEpoch(1)]).run_dir
    weights = run_dir / "last.safetensors"
    good = weights.read_bytes()
    flipped = bytearray(good)
    flipped[-3] ^= 0x10                                          # one bit of one weight
    weights.write_bytes(bytes(flipped))
    with pytest.raises(InvalidCheckpointError, match=r"corrupt \(sha256 mismatch\)"):
        train(cfg, model=model, loaders=loaders, resume=run_dir)
    weights.write_bytes(good)
    state = run_dir / "last.state.pt"
    good_state = state.read_bytes()
    state.write_bytes(good_state[:len(good_state) // 2])         # truncated
    with pytest.raises(InvalidCheckpointError, match="corrupt"):
        train(cfg, model=model, loaders=loaders, resume=run_dir)
    state.write_bytes(good_state)
    stale = run_dir / ".last.safetensors.tmp-99999"             # a crash mid-write
    stale.write_bytes(good[:100])
    result = train(cfg, model=model, loaders=loaders, resume=run_dir)
    assert result.summary["epochs_completed"] == 3 and not stale.exists()


class NanAfter(torch.nn.Module):
    """Wraps a model; its training-mode output turns NaN from the `n`-th call on."""

    def __init__(self, model, n):
        super().__init__()
        self.model, self.n, self.calls = model, n, 0
        self.num_classes = model.num_classes

    def forward(self, x):
        out = self.model(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.n:
                return out * float("nan")
        return out


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(toy, tmp_path):
    model, loaders = toy
    net = NanAfter(model, 9)                                     # epoch 2, batch 3
    cfg = TrainConfig(epochs=3, out_dir=str(tmp_path), name="n", quiet=True, precision="32")
    result = train(cfg, model=net, loaders=loaders)
    s = result.summary
    assert s["stop_reason"] == "nonfinite_loss" and s["test"] is None
    assert "loss became nan at epoch 2, batch 3 (step 9)" in s["stop_detail"]
    weights, state = load_checkpoint(result.run_dir)
    assert (state["epoch"], state["global_step"]) == (1, 6)      # epoch 1's checkpoint stays
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert all(torch.isfinite(p).all() for p in net.parameters())  # no update from the NaN


def test_train_on_an_image_folder(image_folder, tmp_path):
    from cnnlab.data import SplitSpec
    from cnnlab.train.checkpoint import load_weights_file

    cfg = TrainConfig(data=str(image_folder), epochs=3, batch_size=4, lr=0.02, val_fraction=0.2,
                      test_fraction=0.2, out_dir=str(tmp_path), name="f", quiet=True,
                      precision="32")
    result = train(cfg)
    run = result.run_dir
    assert result.model.num_classes == 3 and result.summary["data"]["channels"] == 3
    assert result.test["images"] >= 5 and result.test["acc1"] >= 0.6   # chance: 1/3
    assert json.loads((run / "classes.json").read_text()) == {"blue": 0, "green": 1, "red": 2}
    assert SplitSpec.load(run / "split.json").classes == ["blue", "green", "red"]
    assert "broken.png" in (run / "skipped.txt").read_text()
    assert json.loads((run / "skipped.json").read_text())["skipped_count"] == 1
    _, header = load_weights_file(run / "best.safetensors")
    _, state = load_checkpoint(run)
    assert header["input_size"] == 32 and header["in_chans"] == 3   # LeNet-5's registry size
    assert len(state["meta"]["mean"]) == 3 and state["meta"]["class_to_idx"]["red"] == 2
    assert all(0 < m < 1 for m in state["meta"]["mean"])
    cfg2, _ = resume_config_for(run, epochs=4)
    again = train(cfg2, resume=run, resume_changes={"epochs": (3, 4)})   # reuses split.json
    assert again.summary["epochs_completed"] == 4 and again.test["images"] == result.test["images"]
    # B6: the run recorded its data's manifest; a resume on changed data needs --force
    from cnnlab.data import manifest_hash
    from cnnlab.train.run import resume_config

    assert state["data_manifest"] == result.summary["data_manifest"] == manifest_hash(
        image_folder)
    png = image_folder / "blue" / "0.png"
    png.write_bytes((image_folder / "blue" / "1.png").read_bytes())   # same size, new pixels
    cfg5, changes = resume_config(run, {"epochs": 5}, force=True)
    with pytest.raises(ConfigError, match="data changed .*manifest [0-9a-f]+ -> [0-9a-f]+"):
        train(cfg5, resume=run, resume_changes=changes)
    forced = train(cfg5, resume=run, resume_changes=changes, force=True)
    assert forced.summary["resumes"][-1]["changes"]["data_manifest"] == [
        result.summary["data_manifest"], manifest_hash(image_folder)]


def resume_config_for(run, **overrides):
    from cnnlab.train.run import resume_config

    return resume_config(run, overrides, force=True)


def test_build_model_passes_dropout_and_applies_init():
    from torch import nn

    from cnnlab.train.run import build_model

    net = build_model(TrainConfig(model="squeezenet1_1", dropout=0.3), 3, 3)
    assert {m.p for m in net.modules() if isinstance(m, nn.Dropout)} == {0.3}
    with pytest.raises(ConfigError, match="lenet5 has no dropout"):
        build_model(TrainConfig(dropout=0.3), 10, 1)
    torch.manual_seed(0)
    paper = build_model(TrainConfig(), 10, 1)
    torch.manual_seed(0)
    xavier = build_model(TrainConfig(init="xavier"), 10, 1)
    conv = xavier.features[0] if hasattr(xavier, "features") else next(
        m for m in xavier.modules() if isinstance(m, nn.Conv2d))
    assert torch.all(conv.bias == 0)
    assert not torch.equal(paper.state_dict()[next(iter(paper.state_dict()))],
                           xavier.state_dict()[next(iter(xavier.state_dict()))])


def test_dropout_and_init_need_a_model_train_builds(toy, tmp_path):
    model, loaders = toy
    for change in ({"dropout": 0.2}, {"init": "kaiming"}):
        with pytest.raises(ConfigError, match="models that train\\(\\) builds"):
            train(TrainConfig(out_dir=str(tmp_path), **change), model=model, loaders=loaders)


def test_ema_validates_keeps_best_and_resumes_exactly(toy_factory, tmp_path):
    from cnnlab.train.loop import evaluate
    from cnnlab.train.checkpoint import load_weights_file

    def run(name, callbacks=(), resume=None):
        model, loaders = toy_factory(shift=1)                  # 6 batches an epoch
        cfg = TrainConfig(epochs=3, out_dir=str(tmp_path), name=name, quiet=True,
                          deterministic=True, precision="32", ema_decay=0.9)
        return train(cfg, model=model, loaders=loaders, callbacks=callbacks, resume=resume)

    full = run("full")
    part = run("part", [StopAtStep(9)])
    _, state = load_checkpoint(part.run_dir)
    assert state["ema"]["updates"] == 9
    resumed = run("part", resume=part.run_dir)
    a, b = full.model.state_dict(), resumed.model.state_dict()   # the EMA weights
    assert all(torch.equal(a[k], b[k]) for k in a)
    raw, state = load_checkpoint(full.run_dir)                    # last: the raw weights
    assert not all(torch.equal(raw[k], a[k]) for k in a)
    assert all(torch.equal(state["ema"]["weights"][k], a[k]) for k in a)
    # best holds the weights that were validated: re-evaluating them gives the logged val loss
    best_row = full.history.best("val_acc1")
    weights, _ = load_weights_file(full.run_dir / "best.safetensors")
    _, loaders = toy_factory()
    net, _ = toy_factory()
    net.load_state_dict(weights)
    assert evaluate(net, loaders.val)["loss"] == pytest.approx(best_row["val_loss"], rel=1e-5)


def test_monitor_writes_diagnostics_and_summary_findings(toy, tmp_path):
    model, loaders = toy
    on = train(TrainConfig(epochs=2, out_dir=str(tmp_path), name="on", quiet=True,
                           precision="32", monitor_every=4), model=model, loaders=loaders)
    records = (on.run_dir / "diagnostics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in records] == [1, 5, 9]   # 12 steps, every 4
    diag = json.loads((on.run_dir / "summary.json").read_text())["diagnostics"]
    assert diag["monitor_flags"] == [] or {"code", "layer", "message"} <= set(
        diag["monitor_flags"][0])
    assert all({"code", "severity", "message"} <= set(f) for f in diag["findings"])
    off = train(TrainConfig(epochs=1, out_dir=str(tmp_path), name="off", quiet=True,
                            precision="32", monitor_every=0), model=model,
                loaders=loaders)
    assert not (off.run_dir / "diagnostics.jsonl").exists()
    assert off.summary["diagnostics"]["monitor_flags"] is None


def test_optimizer_steps_only_forwards_group_ends():
    from cnnlab.train.run import OptimizerStepsOnly

    class Seen:
        def __init__(self):
            self.batches = []

        def on_batch_end(self, batch, **_):
            self.batches.append(batch)

    seen = Seen()
    wrapped = OptimizerStepsOnly(seen, accumulate=3, batches_per_epoch=7)
    for b in range(7):
        wrapped.on_batch_end(batch=b, step=b + 1)
    assert seen.batches == [2, 5, 6]   # groups of 3, and the epoch's short last group


def test_compile_trains_and_keeps_checkpoint_keys(monkeypatch, toy, tmp_path):
    from torch import nn

    from cnnlab.train.checkpoint import load_weights_file

    calls = []
    real = nn.Module.compile

    def eager_compile(self, *args, **kwargs):   # dynamo tracing without C++ codegen: seconds
        calls.append(type(self).__name__)
        return real(self, *args, backend="eager", **kwargs)

    monkeypatch.setattr(nn.Module, "compile", eager_compile)
    model, loaders = toy
    keys = set(model.state_dict())
    result = train(TrainConfig(epochs=1, out_dir=str(tmp_path), name="c", quiet=True,
                               precision="32", compile=True), model=model, loaders=loaders)
    assert calls == ["TinyNet"] and result.history[-1]["train_loss"] > 0
    assert set(load_weights_file(result.run_dir / "last.safetensors")[0]) == keys


class StopAtEpoch:
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, metrics, **_):
        return "stopped" if metrics["epoch"] == self.epoch else None


def test_resumed_run_stops_early_at_the_same_epoch(toy_factory, tmp_path):
    def run(name, callbacks=(), resume=None):
        model, loaders = toy_factory()
        cfg = TrainConfig(epochs=30, lr=0.05, early_stopping_patience=3, out_dir=str(tmp_path),
                          name=name, quiet=True, deterministic=True, precision="32")
        return train(cfg, model=model, loaders=loaders, callbacks=callbacks, resume=resume)

    full = run("full")
    stopped_at = full.summary["epochs_completed"]
    assert full.history.stop_reason == "early_stopping" and 4 <= stopped_at < 30
    part = run("part", [StopAtEpoch(stopped_at - 1)])           # 2 epochs without a gain so far
    _, state = load_checkpoint(part.run_dir)
    assert state["early_stopping"]["bad_epochs"] == 2
    resumed = run("part", resume=part.run_dir)
    assert resumed.history.stop_reason == "early_stopping"
    assert resumed.summary["epochs_completed"] == stopped_at    # not 3 epochs after the resume
    with pytest.raises(ConfigError, match="already stopped early"):
        run("full", resume=full.run_dir)


def test_early_stopping_needs_a_validation_split(toy, tmp_path):
    model, loaders = toy
    loaders.val = None
    with pytest.raises(ConfigError, match="val_fraction"):
        train(TrainConfig(epochs=2, early_stopping_patience=2, out_dir=str(tmp_path), quiet=True),
              model=model, loaders=loaders)
