"""Training curves of a run: RUN/curves.png (loss, accuracy, learning rate; train vs val) and
the same per-epoch scalars under RUN/tensorboard/ (the diagnostics monitor adds its per-step
stats and histograms to the same writer).

Both are hooks (see :mod:`cnnlab.train.loop`). The PNG is drawn at the end of training, and after
an epoch too when epochs are slow enough that drawing costs under ~1% of the run (the plot takes
0.3-0.7 s with Matplotlib's Agg renderer on a
shared CPU core). Figures are Figure objects, never pyplot, so nothing
touches the global backend or opens a window.
"""

from __future__ import annotations

import math
from pathlib import Path

from cnnlab.errors import ConfigError

# draw after every epoch only when an epoch takes at least this long (plot cost < ~1%)
PLOT_EVERY_EPOCH_SECONDS = 60.0


def save_curves(rows: list[dict], path: str | Path) -> Path | None:
    """Loss, top-1 accuracy and learning rate per epoch, train vs val, as one PNG (3 panels).

    The curves to read as in CS231n's "babysitting the learning process": a train/val gap is
    overfitting, a flat loss a too-low rate. Returns the path, or None when there are no rows.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in rows if "epoch" in r]
    if not rows:
        return None
    epochs = [r["epoch"] for r in rows]
    fig = Figure(figsize=(12, 3.6))
    FigureCanvasAgg(fig)
    panels = [("loss", ("train_loss", "val_loss"), "loss"),
              ("top-1 accuracy", ("train_acc1", "val_acc1"), "accuracy"),
              ("learning rate", ("lr",), "lr")]
    for i, (title, keys, ylabel) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        for key in keys:
            pts = [(e, r[key]) for e, r in zip(epochs, rows)
                   if r.get(key) is not None and math.isfinite(r[key])]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o" if len(pts) < 30 else None, ms=3,
                        label=key.split("_")[0] if len(keys) > 1 else None)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(keys) > 1 and ax.lines:
            ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    return path


class CurvePlotter:
    """Writes RUN/curves.png at the end of training (and after slow epochs); resumes continue
    the curve from `previous` (the metrics rows already in the run)."""

    def __init__(self, run_dir: str | Path, previous: list[dict] | None = None,
                 every_epoch_seconds: float = PLOT_EVERY_EPOCH_SECONDS):
        self.path = Path(run_dir) / "curves.png"
        self.rows = list(previous or [])
        self.every_epoch_seconds = every_epoch_seconds

    def on_epoch_end(self, metrics, **_):
        self.rows.append(metrics)
        if metrics.get("seconds", 0.0) >= self.every_epoch_seconds:
            save_curves(self.rows, self.path)

    def on_train_end(self, **_):
        save_curves(self.rows, self.path)


def tensorboard_writer(log_dir: str | Path, purge_step: int | None = None):
    """A torch SummaryWriter for `log_dir`. `purge_step`: where a resumed run continues;
    TensorBoard then hides what the killed run logged at that step and after."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch.utils.tensorboard needs the tensorboard package
        raise ConfigError("TensorBoard logging needs the tensorboard package (a cnnlab "
                          "dependency): pip install -c constraints.txt tensorboard, or turn "
                          "it off with --no-tensorboard") from None
    return SummaryWriter(str(log_dir), purge_step=purge_step)


class TensorBoardScalars:
    """Every numeric per-epoch metric as a TensorBoard scalar (train_loss -> "train/loss").

    The x axis is the global step, as for the monitor's per-step scalars in the same run, so
    the charts line up and a resume's purge_step applies to both; "epoch" is a scalar too.
    """

    def __init__(self, writer):
        self.writer = writer

    def on_epoch_end(self, step, metrics, **_):
        for key, value in metrics.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            split, _, name = key.partition("_")
            tag = f"{split}/{name}" if split in ("train", "val") and name else key
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def on_train_end(self, **_):
        self.writer.close()
