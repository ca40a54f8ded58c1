"""The model zoo: one file per architecture family, all registered by name."""

from cnnlab.models.registry import create_model, list_models, model_info, register_model
from cnnlab.models.weights import LoadReport, load_weights

# Importing a family module registers its builders.
from cnnlab.models import (  # noqa: F401,E402
    airbench,
    alexnet,
    cifar,
    densenet,
    inception,
    lenet,
    mobilenet,
    resnet,
    senet,
    squeezenet,
    vgg,
)

__all__ = ["create_model", "list_models", "model_info", "register_model", "load_weights", "LoadReport"]
