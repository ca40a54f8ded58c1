"""cnnlab: classic convolutional networks for image classification, end to end.

The top-level names are imported lazily, so that ``import cnnlab.data`` (e.g. in a data-loading
worker) or ``cnnlab --help`` does not pay for importing torch and building the model registry.
"""

from __future__ import annotations

import importlib

from cnnlab.errors import CnnlabError

__version__ = "0.1.0"

_LAZY = {
    "create_model": "cnnlab.models",
    "list_models": "cnnlab.models",
    "model_info": "cnnlab.models",
    "load_weights": "cnnlab.models",
    "load": "cnnlab.evaluate",          # a trained run -> Predictor
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


def summary(model, input_size=None, **kwargs):
    """Per-layer architecture analysis; see :func:`cnnlab.analyze.summary`.

    `input_size` defaults to the zoo model's own input size (224 for most, 32 for LeNet-5).
    """
    from cnnlab.analyze import summary as _summary

    return _summary(model, input_size, **kwargs)


__all__ = ["__version__", "CnnlabError", "summary", *_LAZY]
