"""Settings of each step as a typed dataclass whose values come from one YAML file under configs/.

A step's dataclass declares its fields without defaults: the YAML file is the one place where a
default lives. Loading checks the file against the dataclass, so a misspelt or missing key is a
clear error naming the file and the key, never a silently ignored setting.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Optional, TypeVar

import yaml

T = TypeVar("T")


class SettingsError(ValueError):
    """A settings file or override that does not match its step's settings."""


def read_yaml(path: str | Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise SettingsError(f"{path}: cannot read settings ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise SettingsError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _check_type(path, key: str, value: Any, hint: Any) -> Any:
    """Coerce ints to floats where a float is declared; reject values of another kind."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(path, key, value, a)
            except SettingsError:
                continue
        raise SettingsError(f"{path}: setting {key!r} = {value!r} is not {hint}")
    if hint is Any or origin in (list, dict, tuple):
        want = origin or object
        if want is not object and not isinstance(value, (list, tuple) if want in (list, tuple) else want):
            raise SettingsError(f"{path}: setting {key!r} = {value!r} is not a {want.__name__}")
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    if hint not in (int, float, str, bool):
        return value
    raise SettingsError(f"{path}: setting {key!r} = {value!r} is not a {hint.__name__}")


def merge(base: dict, extra: Optional[dict]) -> dict:
    """`base` updated by `extra`, nested mappings merged key by key (`model: {hidden_size: 32}`)."""
    out = dict(base)
    for k, v in (extra or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_settings(cls: type[T], path: str | Path, overrides: Optional[dict] = None) -> T:
    """`cls` filled from the YAML file `path` and then `overrides` (nested mappings merged); unknown,
    missing or mistyped keys are a SettingsError naming the file and the key."""
    return from_dict(cls, merge(read_yaml(path), overrides), path)


def from_dict(cls: type[T], data: dict, path: str | Path = "settings") -> T:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(names)})")
    missing = [n for n in names if n not in data]
    if missing:
        raise SettingsError(f"{path}: missing setting(s) {', '.join(missing)}")
    return cls(**{n: _check_type(path, n, data[n], hints[n]) for n in names})
