"""Generic frozen-dataclass configs: defaults <- YAML <- overrides, strict keys and types."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import pytest

from cnnlab.config import from_dict, load_yaml, resolve, save_yaml, to_dict
from cnnlab.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    depth: int = 2


@dataclass(frozen=True)
class Demo:
    epochs: int = 10
    lr: float = 0.1
    optimizer: Literal["sgd", "adam"] = "sgd"
    precision: Literal["auto", "32"] = "auto"
    name: str | None = None
    quiet: bool = False
    sizes: tuple[int, ...] = (1, 2)
    inner: Inner = Inner()


def test_defaults_then_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nlr: 0.5\noptimizer: adam\n")
    cfg = resolve(Demo, path, {"lr": 0.01, "name": None, "quiet": True})
    assert cfg.epochs == 3             # from the file
    assert cfg.lr == 0.01              # the override wins over the file
    assert cfg.optimizer == "adam"
    assert cfg.quiet is True
    assert cfg.name is None            # None overrides mean "not given"
    assert resolve(Demo) == Demo()


def test_unknown_key_names_the_closest(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nlrate: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'lrate'; did you mean 'lr'\?"):
        resolve(Demo, path)
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        resolve(Demo, overrides={"epoch": 3})
    with pytest.raises(ConfigError, match="unknown key 'zzzz'"):
        from_dict(Demo, {"zzzz": 1})


def test_unknown_key_error_names_file(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("optimiser: adam\n")
    with pytest.raises(ConfigError) as e:
        resolve(Demo, path)
    assert "recipe.yaml" in str(e.value) and "'optimizer'" in str(e.value)


def test_synonyms_hint_the_field_name():
    @dataclass(frozen=True)
    class WithSynonyms:
        lr: float = 0.1
        SYNONYMS = {"learning_rate": "lr"}  # not annotated: a class attribute, not a field

    with pytest.raises(ConfigError, match="'learning_rate'; did you mean 'lr'"):
        from_dict(WithSynonyms, {"learning_rate": 0.5})


def test_types_are_checked_and_yaml_quirks_fixed():
    # PyYAML reads 1e-3 (no dot) as a string: accepted for a float field
    assert from_dict(Demo, {"lr": "1e-3"}).lr == pytest.approx(1e-3)
    assert from_dict(Demo, {"lr": 1}).lr == 1.0 and isinstance(from_dict(Demo, {"lr": 1}).lr, float)
    assert from_dict(Demo, {"precision": 32}).precision == "32"   # YAML int for a string choice
    assert from_dict(Demo, {"quiet": "yes"}).quiet is True
    assert from_dict(Demo, {"sizes": [3, 4]}).sizes == (3, 4)
    assert from_dict(Demo, {"inner": {"depth": 5}}).inner == Inner(5)
    with pytest.raises(ConfigError, match="epochs must be an integer"):
        from_dict(Demo, {"epochs": "ten"})
    with pytest.raises(ConfigError, match="epochs must be an integer"):
        from_dict(Demo, {"epochs": True})
    with pytest.raises(ConfigError, match="must be a number"):
        from_dict(Demo, {"lr": "fast"})
    with pytest.raises(ConfigError, match="one of sgd, adam.*did you mean 'adam'"):
        from_dict(Demo, {"optimizer": "adma"})
    with pytest.raises(ConfigError, match="unknown key 'depht'"):
        from_dict(Demo, {"inner": {"depht": 5}})


def test_save_yaml_round_trips(tmp_path):
    cfg = Demo(epochs=4, lr=1e-4, optimizer="adam", name="x", sizes=(5,), inner=Inner(3))
    path = save_yaml(cfg, tmp_path / "out.yaml", header="made by a test\nsecond line")
    assert path.read_text().startswith("# made by a test\n# second line\n")
    assert resolve(Demo, path) == cfg
    assert to_dict(cfg)["sizes"] == [5] and to_dict(cfg)["inner"] == {"depth": 3}


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        resolve(Demo, listing)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert resolve(Demo, empty) == Demo()


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Demo().epochs = 3
