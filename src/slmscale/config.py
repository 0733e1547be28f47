"""Typed, frozen configs: YAML files plus dotted `key=value` overrides.

Every config is a frozen dataclass whose fields carry a docstring (a string
literal right under the field, as in litgpt/torchtune); `field_docs` reads them
back for `--help` and a test asserts none is missing. Loading is strict: an
unknown key or a value of the wrong type is an error naming the key and value.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import textwrap
import types
import typing
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that names an unknown key or a badly typed value."""


def field_docs(cls: type) -> dict[str, str]:
    """Map each field of dataclass `cls` to the docstring written under it."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for stmt, nxt in zip(body, body[1:] + [None]):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            if (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[stmt.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


# How an error message names a plain type: `unique_tokens: value 'x' is not an integer or null`
# (a message once read "is not a valid Optional").
_NOUNS = {bool: "bool", int: "integer", float: "float", str: "string", Path: "path"}
_NAMES = {bool: "a bool (true/false)", int: "an integer", float: "a float", str: "a string", Path: "a path"}
INT_FORMS = "write integers as 20000, 20_000 or 2e4"


def _type_name(tp: Any) -> str:
    """`tp` as an error message says what is allowed: `a float or null`, `one of ['fp32', 'bf16']`,
    `a list of integers`."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        names = [_type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(names + (["null"] if type(None) in args else []))
    if origin is Literal:
        return f"one of {list(get_args(tp))}"
    if origin in (tuple, list):
        items = [arg for arg in get_args(tp) if arg is not Ellipsis]
        if not items or items[0] is Any:
            return "a list"
        item = items[0]
        return f"a list of {_NOUNS[item]}s" if item in _NOUNS else f"a list, each item {_type_name(item)}"
    if tp in _NAMES:
        return _NAMES[tp]
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} keys"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _mentions_int(tp: Any) -> bool:
    return tp is int or any(_mentions_int(arg) for arg in get_args(tp))


def _not_a(key: str, value: Any, tp: Any) -> ConfigError:
    """The one error for a value of the wrong type: the key, the value and what `tp` allows."""
    forms = f" ({INT_FORMS})" if _mentions_int(tp) else ""
    return ConfigError(f"{key}: value {value!r} is not {_type_name(tp)}{forms}")


def parse_int(text: str) -> int | None:
    """An integer written as `20000`, `20_000`, `2e4` or `2.5e4` (the one rule of every int key and
    of the commands' integer options); None for anything else, `2.5` included. Decimal, not float,
    so a long integer is not rounded to 53 bits."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    # A bounded exponent: int() of `1e999999999` would build a billion-digit integer.
    if not number.is_finite() or number.adjusted() > 4000 or number != number.to_integral_value():
        return None
    return int(number)


def _coerce(value: Any, tp: Any, key: str, from_text: bool) -> Any:
    """Check (and, for command-line text, parse) `value` against type `tp`."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if type(None) in args and (value is None or (from_text and str(value).lower() in ("none", "null"))):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, from_text)
            except ConfigError:
                pass
        raise _not_a(key, value, tp)
    if origin is Literal:
        choices = get_args(tp)
        for choice in choices:
            if value == choice or (from_text and str(value) == str(choice)):
                return choice
        raise _not_a(key, value, tp)
    if origin in (tuple, list):
        args = get_args(tp)
        if from_text and isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = yaml.safe_load(text)
            else:
                value = [v for v in (s.strip() for s in text.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            raise _not_a(key, value, tp)
        item_tp = args[0] if args else Any
        return tuple(_coerce(v, item_tp, f"{key}[{i}]", from_text) for i, v in enumerate(value))
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):  # an item of a list of groups, e.g. a sweep's grids
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, key + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if from_text and str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if from_text and str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise _not_a(key, value, tp)
    if tp is int:
        if isinstance(value, bool):
            raise _not_a(key, value, tp)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        number = parse_int(value) if isinstance(value, str) else None  # YAML reads `2e4` as a string
        if number is not None:
            return number
        raise _not_a(key, value, tp)
    if tp is float:
        if isinstance(value, bool):
            raise _not_a(key, value, tp)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _not_a(key, value, tp)
    if tp is str:
        if isinstance(value, str):
            return value
        if from_text:
            return str(value)
        raise _not_a(key, value, tp)
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise _not_a(key, value, tp)
    raise ConfigError(f"{key}: unsupported config type {_type_name(tp)}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build `cls` from a nested mapping; unknown keys and bad values are errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]!s} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, prefix + name, from_text=False)
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-ready mapping of a config (paths as strings, tuples as lists)."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return v
    return plain(cfg)


def apply_overrides(cfg: T, overrides: list[str] | tuple[str, ...]) -> T:
    """Apply dotted `key=value` overrides to a frozen config, returning a new one."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        cfg = _set(cfg, key.strip().split("."), text, key.strip())
    return cfg


def _set(cfg: Any, path: list[str], text: str, full_key: str) -> Any:
    name = path[0]
    names = {f.name for f in dataclasses.fields(cfg)}
    if name not in names:
        raise ConfigError(f"unknown config key {full_key!r} (known at this level: {', '.join(sorted(names))})")
    tp = _hints(type(cfg))[name]
    if len(path) > 1:
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"unknown config key {full_key!r}: {name} has no sub-keys")
        return dataclasses.replace(cfg, **{name: _set(getattr(cfg, name), path[1:], text, full_key)})
    if dataclasses.is_dataclass(tp):
        raise ConfigError(f"config key {full_key!r} is a group; set one of its fields, e.g. {full_key}.<field>=…")
    return dataclasses.replace(cfg, **{name: _coerce(text, tp, full_key, from_text=True)})


def load_config(cls: type[T], path: str | Path | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Defaults of `cls`, then the YAML file at `path` (if any), then the overrides."""
    cfg = cls()
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read config file {path}: {err}") from err
        try:
            merged = _merge(to_dict(cfg), data)
            cfg = from_dict(cls, merged)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from err
    return apply_overrides(cfg, overrides)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(update, dict):
        raise ConfigError(f"expected a mapping at the top of the file, got {type(update).__name__}")
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def describe(cls: type, prefix: str = "", defaults: Any = None) -> list[tuple[str, str, str]]:
    """(key, default, doc) for every field, nested groups flattened with dots. A group's defaults
    are the enclosing config's (a study's world is not WorldConfig())."""
    rows = []
    docs = field_docs(cls)
    defaults = cls() if defaults is None else defaults
    for f in dataclasses.fields(cls):
        tp = _hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            rows.extend(describe(tp, f"{prefix}{f.name}.", getattr(defaults, f.name)))
        else:
            rows.append((prefix + f.name, json.dumps(to_dict(defaults)[f.name]), docs.get(f.name, "")))
    return rows


def fingerprint(cfg: Any) -> str:
    """A short stable hash of a config's resolved values."""
    from slmscale.files import content_hash
    return content_hash(json.dumps(to_dict(cfg), sort_keys=True))
