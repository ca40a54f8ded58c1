"""Built-in training recipes: named YAML files of TrainConfig settings shipped with cnnlab.

Each recipe is one ``NAME.yaml`` in this package, with a comment header citing its source and
saying why each non-default value is what it is. `cnnlab train --recipe NAME` layers it between
the TrainConfig defaults and --config FILE (then the flags)::

    from cnnlab.config import from_dict
    cfg = from_dict(TrainConfig, load_recipe("cifar10-fast"))
"""

from __future__ import annotations

import difflib
from importlib import resources
from typing import Any

from cnnlab.errors import ConfigError

_SUFFIX = ".yaml"


def list_recipes() -> list[str]:
    """The names of the built-in recipes, sorted."""
    return sorted(f.name.removesuffix(_SUFFIX) for f in resources.files(__name__).iterdir()
                  if f.name.endswith(_SUFFIX))


def load_recipe(name: str) -> dict[str, Any]:
    """The settings of recipe `name`, checked against TrainConfig (keys and types)."""
    from cnnlab.config import check_values, load_yaml
    from cnnlab.train.config import TrainConfig

    names = list_recipes()
    if name not in names:
        near = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else "."
        raise ConfigError(f"unknown recipe {name!r}{hint} Built-in recipes: {', '.join(names)}.")
    with resources.as_file(resources.files(__name__) / f"{name}{_SUFFIX}") as path:
        return check_values(TrainConfig, load_yaml(path), source=f"recipe {name}")
