"""cnnlab: classic convolutional networks for image classification, end to end."""

__version__ = "0.1.0"

from cnnlab.errors import CnnlabError  # noqa: E402
from cnnlab.models import create_model, list_models, model_info  # noqa: E402


def summary(model, input_size=None, **kwargs):
    """Per-layer architecture analysis; see :func:`cnnlab.analyze.summary`.

    `input_size` defaults to the zoo model's own input size (224 for most, 32 for LeNet-5).
    """
    from cnnlab.analyze import summary as _summary

    return _summary(model, input_size, **kwargs)


__all__ = ["__version__", "CnnlabError", "create_model", "list_models", "model_info", "summary"]
