"""cnnlab: classic convolutional networks for image classification, end to end."""

__version__ = "0.1.0"

from cnnlab.errors import CnnlabError  # noqa: E402
from cnnlab.models import create_model, list_models, model_info  # noqa: E402


def summary(model, input_size=224, **kwargs):
    """Per-layer architecture analysis; see :func:`cnnlab.analyze.summary`."""
    from cnnlab.analyze import summary as _summary

    return _summary(model, input_size, **kwargs)


__all__ = ["__version__", "CnnlabError", "create_model", "list_models", "model_info", "summary"]
