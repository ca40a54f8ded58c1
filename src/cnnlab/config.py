"""Frozen-dataclass configs: defaults in the class, then a YAML file, then command-line flags.

Every task (training, evaluation, tuning, ...) declares its settings once, as a frozen dataclass
whose fields are the schema and whose defaults are the recipe. :func:`resolve` layers a YAML
file from ``configs/`` and then explicit overrides (usually CLI flags) on top. A key the
dataclass does not have is an error that names the closest valid key (or the field an optional
``SYNONYMS: ClassVar[dict]`` maps it to), so a typo never silently falls back to a default::

    cfg = resolve(TrainConfig, "configs/digits-lenet5.yaml", {"epochs": 3})
    save_yaml(cfg, run_dir / "config.yaml")   # reloadable with resolve(TrainConfig, that_path)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from cnnlab.errors import ConfigError

T = TypeVar("T")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _closest(name: str, valid) -> str:
    near = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {near[0]!r}?" if near else ""


def field_names(cls) -> list[str]:
    """The keys a config dataclass accepts, in declaration order."""
    return [f.name for f in dataclasses.fields(cls)]


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check `value` against the annotation `tp`, converting only where YAML or a shell is lossy."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _coerce(value, opt, key, source)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else
                          f"{source}: {key} = {value!r} fits none of the allowed types")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        if isinstance(value, (int, float)) and str(value) in choices:  # YAML reads `32` as an int
            return str(value)
        hint = _closest(str(value), [str(c) for c in choices])
        raise ConfigError(f"{source}: {key} must be one of {', '.join(map(str, choices))}; "
                          f"got {value!r}{hint}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list; got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        items = [_coerce(v, inner, key, source) for v in value]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {key} must be a mapping of {tp.__name__} fields; "
                              f"got {value!r}")
        return from_dict(tp, value, source=f"{source}: {key}")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"{source}: {key} must be true or false; got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be an integer; got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{source}: {key} must be an integer; got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be a number; got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):  # PyYAML reads `1e-3` (no dot) as a string
            try:
                out = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(out):
                    return out
        raise ConfigError(f"{source}: {key} must be a number; got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{source}: {key} must be a string; got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{source}: {key} has unsupported value {value!r} (expected {tp})")


def check_values(cls, data: Mapping[str, Any], *, source: str = "config") -> dict[str, Any]:
    """Validate keys and types of a (partial) mapping for `cls`; returns the coerced values."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of settings; got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = field_names(cls)
    synonyms = getattr(cls, "SYNONYMS", {})  # e.g. {"learning_rate": "lr"}: suggested, not accepted
    out = {}
    for key, value in data.items():
        k = str(key).replace("-", "_")
        if k not in names:
            hint = f"; did you mean {synonyms[k]!r}?" if k in synonyms else _closest(k, names)
            raise ConfigError(f"{source}: unknown key {key!r}{hint or '.'} "
                              f"Valid keys: {', '.join(names)}.")
        out[k] = _coerce(value, hints[k], k, source)
    return out


def from_dict(cls: type[T], data: Mapping[str, Any], *, source: str = "config") -> T:
    """Build `cls` from a mapping: unknown keys fail naming the closest field; types are checked."""
    return cls(**check_values(cls, data, source=source))


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML config file into a dict (empty file -> {}); a bad file is a ConfigError."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(p)!r} does not exist; "
                          "see configs/ for examples") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {str(p)!r}: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        msg = f"config file {str(p)!r} is not valid YAML: {e}".replace("\n", " ")
        raise ConfigError(msg) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of key: value lines; "
                          f"got a {type(data).__name__}")
    return data


def resolve(cls: type[T], path: str | os.PathLike | None = None,
            overrides: Mapping[str, Any] | None = None) -> T:
    """Defaults of `cls`, then the YAML file at `path`, then `overrides` (None values skipped)."""
    values = check_values(cls, load_yaml(path), source=str(path)) if path is not None else {}
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    values.update(check_values(cls, flags, source="overrides"))
    return cls(**values)


def to_dict(cfg) -> dict[str, Any]:
    """A config as plain YAML/JSON-safe values (tuples become lists, nested configs dicts)."""
    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(cfg)


def save_yaml(cfg, path: str | os.PathLike, header: str = "") -> Path:
    """Write a config as YAML that :func:`resolve` reads back to an equal config."""
    import yaml

    p = Path(path)
    lines = "".join(f"# {line}\n" for line in header.splitlines())
    p.write_text(lines + yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")
    return p
