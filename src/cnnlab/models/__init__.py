"""The model zoo: one file per architecture family, all registered by name."""

import importlib

from cnnlab.models.registry import create_model, list_models, model_info, register_model

# Importing a family module registers its builders.
FAMILIES = (
    "lenet", "alexnet", "vgg", "inception", "resnet", "senet", "cifar",
    "densenet", "squeezenet", "mobilenet",
)
for _family in FAMILIES:
    try:
        importlib.import_module(f"cnnlab.models.{_family}")
    except ModuleNotFoundError as e:  # TODO(integration): make strict once every family has landed
        if e.name != f"cnnlab.models.{_family}":
            raise

__all__ = ["create_model", "list_models", "model_info", "register_model", "FAMILIES"]
