"""The zoo at a glance: each model's parameter count, default input and paper, counted on the meta
device (no weights allocated, no initialisation run), so listing even VGG-19 is instant."""

from __future__ import annotations

import torch


def count_params(name: str, **kwargs) -> int:
    """Parameters of zoo model `name` (at its default classes unless `num_classes` is given)."""
    from cnnlab.models import create_model

    with torch.device("meta"):          # shapes only: no weight memory, no init time
        model = create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


def describe_models(pattern: str | None = None) -> list[dict]:
    """One dict per zoo model matching `pattern`: name, params, input size, channels, classes, paper.

    `pattern` is a shell glob (``"resnet*"``); a plain word matches every name that contains it.
    """
    from cnnlab.models import list_models, model_info

    if pattern and not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    rows = []
    for name in list_models(pattern):
        info = model_info(name)
        rows.append({
            "name": name,
            "params": count_params(name),
            "input_size": info.input_size,
            "in_chans": info.in_chans,
            "num_classes": info.num_classes,
            "paper": info.paper,
        })
    return rows
