"""The pretrained network a transfer starts from: a cnnlab run, or a foreign weights file.

- A run directory written by ``cnnlab train`` (best, else last checkpoint) or one of its
  ``TAG.safetensors`` files: rebuilt with :func:`cnnlab.evaluate.predictor.load`, which restores
  the model name, input size, channels and the normalisation the run trained with.
- Any other weights file (torchvision .pth, timm .pth/.safetensors, a state dict of your own):
  needs the model name; keys go through :func:`cnnlab.transfer.keymap.load_mapped` (timm layouts
  detected automatically, plus user rules), and inputs are normalised with the model's published
  statistics (ImageNet's for the ImageNet models).
- No weights: a freshly initialised model, for trying the tools out (its features are random).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from cnnlab.errors import ConfigError


@dataclass
class Source:
    """A loaded model and the preprocessing its weights expect."""

    model: nn.Module
    model_name: str
    image_size: int
    in_chans: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    weights: str | None = None
    notes: list[str] = field(default_factory=list)
    data: str | None = None          # a cnnlab run's training data (what pretrained it)

    @property
    def mode(self) -> str:
        """The decoder's colour mode for this model: "L" (1 channel) or "RGB"."""
        return "L" if self.in_chans == 1 else "RGB"


def _cnnlab_header(path: Path) -> dict:
    """The "cnnlab" JSON in a safetensors header ({} when absent or unreadable)."""
    if path.suffix != ".safetensors" or not path.is_file():
        return {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("cnnlab", "{}"))
    except Exception:  # noqa: BLE001 - not a cnnlab file; the mapped loader reports real errors
        return {}


def is_cnnlab_run(weights: str | os.PathLike) -> bool:
    """Whether `weights` is a run directory or a weights file that names its model."""
    p = Path(weights)
    return p.is_dir() or bool(_cnnlab_header(p).get("model"))


def load_source(weights: str | os.PathLike | None = None, model: str | None = None, *,
                layout: str | None = "auto", rules=None, strict: bool = True,
                image_size: int | None = None, device: str = "cpu") -> Source:
    """Build the source network for transfer (see the module docstring)."""
    import cnnlab

    if weights is not None and is_cnnlab_run(weights) and not rules:
        from cnnlab.evaluate.predictor import load

        p = load(weights, device)
        if model and model != p.model_name:
            raise ConfigError(f"{weights} holds a {p.model_name}, not a {model}; drop --model "
                              "or pass the matching weights")
        return Source(p.model, p.model_name, image_size or p.image_size, p.in_chans, p.mean,
                      p.std, p.checkpoint, data=p.data)
    if not model:
        raise ConfigError("which architecture? pass --model NAME (`cnnlab models` lists them): "
                          f"{weights or 'no weights'} does not say")
    net = cnnlab.create_model(model)
    info = cnnlab.model_info(model)
    notes = []
    if weights is None:
        notes.append(f"no --weights: {model} is randomly initialised, so its features are too")
    else:
        from cnnlab.transfer.keymap import load_mapped

        report = load_mapped(net, weights, layout=layout, rules=rules, strict=strict)
        notes.append(str(report))
    if device != "cpu":
        from cnnlab.train.run import resolve_device

        net.to(resolve_device(device))
    chans = getattr(net, "in_chans", info.in_chans)
    stats = len(info.mean) == chans
    return Source(net, model, image_size or info.input_size, chans,
                  tuple(info.mean) if stats else None, tuple(info.std) if stats else None,
                  None if weights is None else str(weights), notes)
