"""Training curves: the PNG (drawn at the end, and after slow epochs) and TensorBoard scalars."""

import sys

import pytest
from PIL import Image

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


class FakeWriter:
    def __init__(self):
        self.scalars, self.closed = [], False

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_tensorboard_is_optional(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # import fails
    assert plots.tensorboard_writer(tmp_path) is None


def test_train_writes_curves_and_tensorboard_scalars(monkeypatch, toy, tmp_path):
    import cnnlab.train.run as run_module

    writer = FakeWriter()
    monkeypatch.setattr(run_module, "tensorboard_writer", lambda path: writer)
    model, loaders = toy
    result = train(TrainConfig(epochs=2, out_dir=str(tmp_path), name="tb", quiet=True,
                               precision="32"), model=model, loaders=loaders)
    assert (result.run_dir / "curves.png").is_file()
    tags = {(t, s) for t, _, s in writer.scalars}
    assert {("train/loss", 1), ("val/acc1", 2), ("lr", 2)} <= tags
    loss2 = next(v for t, v, s in writer.scalars if (t, s) == ("val/loss", 2))
    assert loss2 == pytest.approx(result.history[1]["val_loss"]) and writer.closed
