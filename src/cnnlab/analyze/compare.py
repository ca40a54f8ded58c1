"""Zoo models side by side: parameters, MACs, activation memory and measured CPU latency.

Parameters, MACs and memory come from :func:`cnnlab.analyze.summary` on the meta device (no
compute); latency is measured on a real CPU copy in eval mode, batch 1, as the median of a few
timed runs after one warm-up run. Latency depends on the machine, the thread count and whatever
else runs on it: the result records the threads and torch version next to the numbers.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.analyze.summary import summary
from cnnlab.errors import ConfigError


@dataclass
class ComparedModel:
    """One model's line in a comparison."""

    name: str
    input_shape: tuple[int, int, int]   # (C, H, W)
    params: int
    macs: int                           # per image
    activation_bytes: int               # per image, forward, float32
    latency_ms: float | None            # median per image on CPU, batch 1; None if not measured
    latency_runs: int


def measure_latency(model: nn.Module, input_shape, repeats: int = 5, warmup: int = 1) -> float:
    """Median seconds of one eval-mode forward of a (1, C, H, W) zero batch on the CPU."""
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1; got {repeats}")
    was_training = model.training
    model.eval()
    x = torch.zeros((1, *input_shape))
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + repeats):
                t0 = time.perf_counter()
                model(x)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
    finally:
        model.train(was_training)
    return statistics.median(times)


def compare(names, input_size=None, repeats: int = 5, num_classes: int | None = None,
            latency: bool = True) -> list[ComparedModel]:
    """Summarise each zoo model at its default input size (or `input_size`) and time it on CPU."""
    from cnnlab.models import create_model, model_info

    if not names:
        raise ConfigError("name at least one model to compare, e.g. alexnet vgg16 resnet50")
    out = []
    for name in names:
        info = model_info(name)
        size = input_size if input_size is not None else info.input_size
        with torch.device("meta"):
            meta_model = create_model(name, num_classes=num_classes)
        s = summary(meta_model, size, device="meta")
        shape = tuple(s.input_shape[1:])
        ms = None
        if latency:
            model = create_model(name, num_classes=num_classes)
            ms = 1000 * measure_latency(model, shape, repeats=repeats)
            del model
        out.append(ComparedModel(name, shape, s.params, s.macs, s.activation_bytes, ms,
                                 repeats if latency else 0))
    return out


def environment() -> dict:
    """What a latency number depends on, recorded beside it."""
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}


def comparison_dict(models: list[ComparedModel]) -> dict:
    rows = []
    for m in models:
        d = asdict(m)
        d["input_shape"] = list(m.input_shape)
        rows.append(d)
    return {"models": rows, "environment": environment()}


def comparison_table(models: list[ComparedModel]) -> str:
    """Aligned text, one line per model."""
    runs = max((m.latency_runs for m in models), default=0)
    head = ["Model", "Input", "Params", "MACs", "Act MB/img",
            f"CPU ms/img (median of {runs})" if runs else "CPU ms/img"]
    lines = [[m.name, "x".join(map(str, m.input_shape)), f"{m.params / 1e6:.2f}M",
              f"{m.macs / 1e9:.2f}G", f"{m.activation_bytes / 1e6:.1f}",
              f"{m.latency_ms:.1f}" if m.latency_ms is not None else "-"] for m in models]
    widths = [max(len(h), *(len(r[j]) for r in lines)) for j, h in enumerate(head)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if j < 2 else c.rjust(w)
                         for j, (c, w) in enumerate(zip(cells, widths)))

    env = environment()
    return "\n".join([fmt(head), "-" * len(fmt(head)), *map(fmt, lines),
                      f"torch {env['torch']}, {env['threads']} CPU threads, eval mode, batch 1; "
                      "MACs and memory per image, float32"])


def plot_comparison(models: list[ComparedModel], path) -> Path:
    """Write a PNG: MACs vs latency (bubble area ~ parameters) and params vs MACs, labelled."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)                    # no pyplot: no global state, no display needed
    ax1, ax2 = fig.subplots(1, 2)
    gmacs = [m.macs / 1e9 for m in models]
    mparams = [m.params / 1e6 for m in models]
    have_latency = all(m.latency_ms is not None for m in models)
    if have_latency:
        lat = [m.latency_ms for m in models]
        ax1.scatter(gmacs, lat, s=[max(20.0, 4 * p) for p in mparams], alpha=0.5)
        for m, x, y in zip(models, gmacs, lat):
            ax1.annotate(m.name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax1.set_xlabel("GMACs per image")
        ax1.set_ylabel("CPU latency, ms per image (median)")
        ax1.set_title("Compute vs latency (bubble area ~ params)")
    else:
        ax1.set_axis_off()
    ax2.scatter(mparams, gmacs)
    for m, x, y in zip(models, mparams, gmacs):
        ax2.annotate(m.name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax2.set_xlabel("Parameters (millions)")
    ax2.set_ylabel("GMACs per image")
    ax2.set_title("Parameters vs compute")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
