"""Strict configuration: YAML mappings -> frozen dataclasses.

Every configuration object of the stack (vehicle parameters, controller settings, cost
weights, simulator settings) is a frozen dataclass. :func:`from_mapping` builds one from a
mapping and refuses anything it does not understand:

* a key that is not a field  -> :class:`ConfigError` naming the file, the key and the known keys;
* a missing required field   -> :class:`ConfigError` naming the file and the field;
* a value of the wrong type, NaN/inf, or outside the field's ``min``/``max`` metadata
  -> :class:`ConfigError` naming the file, the field, the value and the expected range.

Field metadata understood here (all optional): ``unit`` (str, documentation), ``doc`` (str),
``min``/``max`` (inclusive bounds), ``gt``/``lt`` (exclusive bounds), ``range`` (str: why the bounds, named in
the error when a value is outside them), ``choices`` (tuple). A number that YAML 1.1 reads as text (``1e30``,
``1.0e30``) is reported as text, with the spelling that YAML reads as a number (``1.0e+30``).
Nested dataclass fields are read from nested mappings, with dotted key paths in errors.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or mapping is invalid. The message names the file and key."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping (PyYAML keeps the last silently: a car
    file with ``mass`` twice would race the second value without a word)."""


def _mapping_once(loader: _StrictLoader, node, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.setdefault(key, key_node.start_mark)
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if first is not key_node.start_mark:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (lines {first.line + 1} and {key_node.start_mark.line + 1}); "
                "expected each key once", key_node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_once)


def parse_yaml(text: str):
    """``yaml.safe_load`` that refuses a key given twice in a mapping (a ``yaml.YAMLError`` naming the key and both
    lines); every YAML file the package reads goes through it."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def load_yaml(path: str | Path) -> dict:
    """Read a YAML file that must contain a mapping at the top level.

    Raises
    ------
    ConfigError
        If the file does not exist, is not valid YAML, or is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    raw = path.read_bytes()
    if b"\0" in raw[:8192]:
        raise ConfigError(f"{path}: a binary file (NUL bytes), not YAML; expected a text file of key: value lines")
    try:
        data = parse_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); "
                          f"expected a YAML text file of key: value lines") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of key: value at the top level, got {type(data).__name__}")
    return data


def _type_hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _number_text(value: str) -> str | None:
    """The advice for a number that YAML 1.1 (PyYAML) read as text, e.g. ``1e30`` or ``1.0e30`` (PyYAML wants a dot
    in the mantissa and a sign in the exponent: ``1.0e+30``); None when ``value`` is not such a number."""
    try:
        v = float(value.replace("_", ""))
    except ValueError:
        return None
    if not math.isfinite(v):
        return None
    m, _, e = value.strip().lower().partition("e")
    fixed = f"{m if '.' in m else m + '.0'}e{e if e[:1] in '+-' else '+' + e}" if e else value
    return (f"got the text {value!r}, not a number: YAML 1.1 reads an exponent only with a dot in the mantissa "
            f"and a sign in the exponent; write it as {fixed}")


def _bounds_text(meta: Mapping, unit: str) -> str:
    """``" (expected lo .. hi unit: why)"`` when the field has both bounds, else ""."""
    lo = f"{meta['min']:g} .. " if "min" in meta else (f"> {meta['gt']:g} and " if "gt" in meta else None)
    hi = f"{meta['max']:g}" if "max" in meta else (f"< {meta['lt']:g}" if "lt" in meta else None)
    if lo is None or hi is None:
        return ""
    if "max" in meta and "gt" in meta:
        hi = f"<= {hi}"
    why = f": {meta['range']}" if meta.get("range") else ""
    return f" (expected {lo}{hi}{unit}{why})"


def _check_number(value: Any, where: str, meta: Mapping, want_int: bool) -> float | int:
    if isinstance(value, str) and _number_text(value):
        raise ConfigError(f"{where}: {_number_text(value)}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kind = "an integer" if want_int else "a number"
        raise ConfigError(f"{where}: expected {kind}, got {value!r}")
    if want_int and not isinstance(value, numbers.Integral):
        if float(value).is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    unit = f" {meta['unit']}" if meta.get("unit") else ""
    span = _bounds_text(meta, unit)
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{where}: {value!r} is below the minimum {meta['min']}{unit}{span}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"{where}: {value!r} is above the maximum {meta['max']}{unit}{span}")
    if "gt" in meta and not value > meta["gt"]:
        raise ConfigError(f"{where}: expected a value > {meta['gt']}{unit}, got {value!r}{span}")
    if "lt" in meta and not value < meta["lt"]:
        raise ConfigError(f"{where}: expected a value < {meta['lt']}{unit}, got {value!r}{span}")
    return float(value) if not want_int else int(value)


def _convert(value: Any, tp: Any, where: str, meta: Mapping, source: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_mapping(tp, value, source=source, prefix=where.split(": ", 1)[-1] + ".")
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], where, meta, source)
    if tp is float:
        return _check_number(value, where, meta, want_int=False)
    if tp is int:
        return _check_number(value, where, meta, want_int=True)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{where}: expected one of {list(meta['choices'])}, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_convert(v, args[0], f"{where}[{i}]", meta, source) for i, v in enumerate(value)]
        else:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected a list of {len(args)} values, got {len(value)}")
            items = [_convert(v, a, f"{where}[{i}]", meta, source) for i, (v, a) in enumerate(zip(value, args))]
        return tuple(items)
    return value


def from_mapping(cls: type[T], data: Mapping[str, Any], source: str = "<config>", prefix: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``data`` strictly.

    Parameters
    ----------
    cls : dataclass type
    data : mapping of field name -> value (nested mappings for nested dataclasses)
    source : str
        The file (or other origin) named in error messages.
    prefix : str
        Dotted path of ``data`` inside the file, for nested sections.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{prefix}{unknown[0]}'; known keys: {', '.join(sorted(fields))}"
        )
    missing = [f for name, f in fields.items() if name not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        def describe(f):
            unit = f" [{f.metadata['unit']}]" if f.metadata.get("unit") else ""
            return f"{prefix}{f.name}{unit}" + (f" ({f.metadata['doc']})" if len(missing) > 1 and f.metadata.get("doc")
                                                else "")
        raise ConfigError(f"{source}: missing key{'s' if len(missing) > 1 else ''} "
                          + "; ".join(describe(f) for f in missing))
    kwargs = {}
    for name, f in fields.items():
        where = f"{source}: {prefix}{name}"
        if name not in data:
            continue
        kwargs[name] = _convert(data[name], hints[name], where, f.metadata, source)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {prefix.rstrip('.') or cls.__name__}: {exc}") from exc


def validate(obj: Any, source: str | None = None) -> None:
    """Check a dataclass built in Python the way :func:`from_mapping` checks a file: each field's type, finiteness
    and ``min``/``max``/``gt``/``lt``/``choices`` metadata; a :class:`ConfigError` names the class (or ``source``),
    the field and the expected range. Call it from ``__post_init__`` so that the Python API is as strict as the
    YAML. Numbers are normalised in place (an integral float for an int field becomes an int)."""
    cls = type(obj)
    hints = _type_hints(cls)
    name = source or cls.__name__
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            continue  # validated by its own __post_init__
        conv = _convert(value, hints[f.name], f"{name}: {f.name}", f.metadata, name)
        if conv is not value and conv != value or type(conv) is not type(value):
            object.__setattr__(obj, f.name, conv)


def load(cls: type[T], path: str | Path, section: str | None = None) -> T:
    """Load ``cls`` from a YAML file (optionally from one top-level ``section``)."""
    data = load_yaml(path)
    if section is not None:
        if section not in data:
            raise ConfigError(f"{path}: missing section {section!r}")
        data = data[section]
        return from_mapping(cls, data, source=str(path), prefix=f"{section}.")
    return from_mapping(cls, data, source=str(path))


def to_dict(obj: Any) -> Any:
    """A dataclass (possibly nested) as plain dicts/lists, for JSON/YAML output."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def replace_from(obj: T, overrides: Mapping[str, Any], source: str = "<overrides>") -> T:
    """Return ``obj`` with fields replaced from ``overrides``, validated like :func:`from_mapping`."""
    base = to_dict(obj)

    def merge(a: dict, b: Mapping) -> dict:
        out = dict(a)
        for k, v in b.items():
            if isinstance(v, Mapping) and isinstance(out.get(k), dict):
                out[k] = merge(out[k], v)
            else:
                out[k] = v
        return out

    return from_mapping(type(obj), merge(base, overrides), source=source)
