"""Name -> builder registry for the model zoo, with the metadata `cnnlab models` lists."""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass
from typing import Callable

from torch import nn

from cnnlab.errors import DuplicateModelError, UnknownModelError


@dataclass(frozen=True)
class ModelInfo:
    """What a user needs to feed a model: its default input and where it comes from."""

    name: str
    input_size: int = 224          # default square input side in pixels
    in_chans: int = 3
    num_classes: int = 1000
    paper: str = ""                # short citation, e.g. "He et al. 2016"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)   # ImageNet statistics, torchvision's
    std: tuple[float, ...] = (0.229, 0.224, 0.225)


_MODELS: dict[str, Callable[..., nn.Module]] = {}
_INFO: dict[str, ModelInfo] = {}


def register_model(fn: Callable | None = None, **info):
    """Register a builder under its function name; keyword args fill its :class:`ModelInfo`.

    Use as ``@register_model`` or ``@register_model(input_size=299, paper="...")``.
    """

    def deco(f: Callable) -> Callable:
        name = f.__name__
        if name in _MODELS:
            raise DuplicateModelError(f"{name!r} is registered twice")
        _MODELS[name] = f
        _INFO[name] = ModelInfo(name=name, **info)
        return f

    return deco(fn) if fn is not None else deco


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; `pattern` is a shell glob such as ``"resnet*"``."""
    names = sorted(_MODELS, key=_natural_key)   # resnet20 before resnet110
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def _check_name(name: str) -> None:
    if name not in _MODELS:
        near = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
        hint = f"close matches: {', '.join(near)}. " if near else ""
        raise UnknownModelError(f"unknown model {name!r}; {hint}`cnnlab models` lists them all.")


def model_info(name: str) -> ModelInfo:
    """The registry metadata of one model."""
    _check_name(name)
    return _INFO[name]


def create_model(
    name: str,
    num_classes: int | None = None,
    in_chans: int | None = None,
    weights: str | None = None,
    **kwargs,
) -> nn.Module:
    """Build a zoo model by name.

    `num_classes` and `in_chans` default to the model's own (1000 and 3 for the ImageNet models;
    10 and 1 for LeNet-5; 10 and 3 for the CIFAR ResNets). `weights` is a local path or URL of a
    .pth/.pt/.safetensors state dict (torchvision's layout or a cnnlab checkpoint), loaded safely.
    """
    _check_name(name)
    info = _INFO[name]
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    model = _MODELS[name](**kwargs)
    model.model_name = name
    model.default_input_size = info.input_size
    from cnnlab.models.shapes import attach_input_check

    attach_input_check(model)
    if weights is not None:
        from cnnlab.models.weights import load_weights

        load_weights(model, weights)
    return model
