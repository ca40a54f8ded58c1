"""Training curves: the PNG (drawn at the end, and after slow epochs) and TensorBoard scalars."""

import sys

import pytest
from PIL import Image

from cnnlab.errors import ConfigError
from cnnlab.train import plots
from cnnlab.train.config import TrainConfig
from cnnlab.train.run import train


def rows(n=4):
    return [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_acc1": 0.5 + e / 10,
             "val_acc1": 0.4 + e / 10, "lr": 0.1 / e, "seconds": 1.0} for e in range(1, n + 1)]


def test_save_curves_writes_a_three_panel_png(tmp_path):
    out = plots.save_curves(rows() + [{"epoch": 5, "train_loss": float("nan"), "lr": 0.01}],
                            tmp_path / "c.png")
    with Image.open(out) as im:
        w, h = im.size
        assert im.format == "PNG" and w > 2.5 * h             # three panels side by side
        # not a blank canvas: the curves put more than background colours on it
        assert len(im.convert("RGB").getcolors(maxcolors=100_000)) > 20
    assert plots.save_curves([], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_plotter_draws_after_slow_epochs_and_at_the_end(tmp_path):
    plotter = plots.CurvePlotter(tmp_path, previous=rows(2), every_epoch_seconds=10)
    plotter.on_epoch_end(metrics={**rows(3)[-1], "seconds": 1.0})    # fast: wait for the end
    assert not plotter.path.exists()
    plotter.on_epoch_end(metrics={**rows(4)[-1], "seconds": 12.0})   # slow: draw now
    assert plotter.path.exists() and len(plotter.rows) == 4
    plotter.path.unlink()
    plotter.on_train_end()
    assert plotter.path.exists()


def test_missing_tensorboard_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # import fails
    with pytest.raises(ConfigError, match="--no-tensorboard"):
        plots.tensorboard_writer(tmp_path)


def test_train_writes_curves_and_tensorboard_events(toy, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model, loaders = toy                 # 96 images in batches of 16: 6 steps per epoch
    result = train(TrainConfig(epochs=2, monitor_every=4, out_dir=str(tmp_path), name="tb",
                               quiet=True, precision="32"), model=model, loaders=loaders)
    assert (result.run_dir / "curves.png").is_file()
    ea = EventAccumulator(str(result.run_dir / "tensorboard"),
                          size_guidance={"scalars": 0, "histograms": 0}).Reload()
    scalars, hists = set(ea.Tags()["scalars"]), set(ea.Tags()["histograms"])
    for tag in ("train/loss", "train/acc1", "val/loss", "val/acc1", "lr", "images_per_s",
                "epoch"):                                     # per epoch, at its last step
        assert [e.step for e in ea.Scalars(tag)] == [6, 12], tag
    assert [e.value for e in ea.Scalars("epoch")] == [1, 2]
    assert ea.Scalars("val/loss")[1].value == pytest.approx(result.history[1]["val_loss"])
    # the monitor's records every 4 steps (the first step always), into the same writer
    layer_stats = {"weight_norm/fc.weight", "grad_norm/fc.weight", "update_ratio/fc.weight",
                   "activation_dead_fraction/features.1"}
    assert layer_stats <= scalars
    assert [e.step for e in ea.Scalars("update_ratio/features.0.weight")] == [1, 5, 9]
    assert {"weights/fc.weight", "grads/fc.weight", "grads/features.0.bias"} <= hists
    grads = ea.Histograms("grads/fc.weight")
    assert [e.step for e in grads] == [1, 5, 9] and grads[0].histogram_value.num == 48
    assert len(list((result.run_dir / "tensorboard").iterdir())) == 1   # one writer, one file


def test_no_tensorboard_writes_no_events(toy, tmp_path):
    model, loaders = toy
    result = train(TrainConfig(epochs=1, monitor_every=2, tensorboard=False, quiet=True,
                               out_dir=str(tmp_path), name="off"), model=model, loaders=loaders)
    assert not (result.run_dir / "tensorboard").exists()
    assert (result.run_dir / "diagnostics.jsonl").is_file()   # the monitor still runs
