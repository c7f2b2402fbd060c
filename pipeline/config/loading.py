"""YAML (and flag overrides) to a validated :class:`~pipeline.config.run.Config`: unknown keys,
wrong types and out-of-range values raise :class:`ConfigError` naming the file and the key."""

from __future__ import annotations

import difflib
import math
import types
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from pipeline.config.columns import check_column_names
from pipeline.config.fields import MAX_NUMBER, choices, key_label
from pipeline.config.geometry import MAX_SLOTS, SlotConfig
from pipeline.config.run import Config
from pipeline.errors import ConfigError
from pipeline.yaml_io import read_yaml


def load_config(
    path: str | Path | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    text: str | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> Config:
    """Load a YAML config, apply ``overrides`` (same nesting as the YAML) and validate.

    Args:
        path: A YAML file, or None for the defaults.
        overrides: Values that replace the file's, e.g. ``{"model": {"imgsz": 320}}`` from CLI flags.
        text: The file's contents, when they are already in hand (checked before being written to
            ``path``); errors and ``slots_file`` are still relative to ``path``.
        flag_names: The flag each override key comes from (``{"model.imgsz": "--imgsz"}``): an error
            in a value a flag set names the flag.

    Returns:
        The validated config.

    Raises:
        ConfigError: The file is missing or unparsable, or a key or value is invalid.
    """
    origin = str(path) if path is not None else "<defaults>"
    data: Any = {}
    if path is not None:
        data = read_yaml(path, "config file", text)
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: expected a mapping of sections at the top level, got {_describe(data)}")
    flags = {key: flag for key, flag in (flag_names or {}).items() if _has_key(overrides or {}, key)}
    merged = _deep_merge(data, overrides or {})
    try:
        config = _build(Config, merged, origin, "")
    except _KeyError as exc:
        raise ConfigError(f"{key_label(origin, flags, exc.key)}: {exc.detail}") from None
    config.origin, config.flags = origin, flags
    if config.parking.slots_file:
        config.parking.slots += load_slots(_relative_to(config.parking.slots_file, path))
        if len(config.parking.slots) > MAX_SLOTS:
            raise config.error(
                "parking.slots",
                f"expected at most {MAX_SLOTS} slots with those of slots_file, got {len(config.parking.slots)}",
            )
    _check_unique_names(config)
    _check_class_groups(config)
    check_column_names(config)
    return config


def _relative_to(name: str, config_path: str | Path | None) -> Path:
    """A path from a config file: relative to the config's folder if it exists there, else as given."""
    candidate = Path(config_path).parent / name if config_path is not None else Path(name)
    return candidate if candidate.exists() else Path(name)


def load_slots(path: str | Path) -> list[SlotConfig]:
    """Read a slots file: a YAML (or JSON, which is YAML) list of ``{name, polygon}``.

    Raises:
        ConfigError: Missing, unparsable or malformed file.
    """
    data = read_yaml(path, "slots file")
    if isinstance(data, dict) and "slots" in data:
        data = data["slots"]
    _check_count(data, MAX_SLOTS, "slots", str(path), "slots")
    return _coerce(data, list[SlotConfig], str(path), "slots")


def _check_unique_names(config: Config) -> None:
    sections = (
        ("lines", config.lines),
        ("zones", config.zones),
        ("parking.slots", config.parking.slots),
        ("movements.approaches", config.movements.approaches),
        ("movements.crosswalks", config.movements.crosswalks),
        ("class_groups", config.class_groups),
    )
    for section, items in sections:
        names = [item.name for item in items]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise config.error(section, f"names must be unique, {', '.join(duplicates)} repeated")


def _check_class_groups(config: Config) -> None:
    """A class is in one group at most (else its events would count twice in a report)."""
    seen: dict[str, str] = {}
    for index, group in enumerate(config.class_groups):
        for class_name in group.classes:
            if class_name in seen:
                key = f"class_groups[{index}].classes ({group.name})"
                raise config.error(key, f"{class_name!r} is in {seen[class_name]!r} already")
            seen[class_name] = group.name
    walkers = {c for group in config.class_groups if group.kind == "pedestrian" for c in group.classes}
    if config.movements.crosswalks and config.model.classes is not None and not walkers & set(config.model.classes):
        raise config.error(
            "movements.crosswalks",
            f"model.classes keeps no pedestrian class ({', '.join(sorted(walkers)) or 'none in class_groups'})",
        )


def _has_key(data: Mapping[str, Any], dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    if head not in data:
        return False
    return not rest or (isinstance(data[head], Mapping) and _has_key(data[head], rest))


class _KeyError(ConfigError):
    """A config error at one key, before it is labelled with the file or the flag."""

    def __init__(self, origin: str, key: str, detail: str) -> None:
        super().__init__(f"{key_label(origin, {}, key)}: {detail}")
        self.key, self.detail = key, detail


def _deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "nothing"


def _build(cls: type, data: Any, origin: str, key: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, checking every key, type and value."""
    label = key or "top level"
    if not isinstance(data, Mapping):
        raise _KeyError(origin, label, f"expected a mapping, got {_describe(data)}")
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if not f.metadata.get("internal")}
    _refuse_unknown(data, list(known), origin, key)
    kwargs = {}
    for name, spec in known.items():
        if name in data:
            kwargs[name] = _field_value(spec, data[name], hints[name], origin, _join(key, name))
        elif spec.default is MISSING and spec.default_factory is MISSING:
            raise _KeyError(origin, label, f"missing required key '{name}'")
    try:
        return cls(**kwargs)
    except ValueError as exc:  # cross-field checks in __post_init__
        raise _KeyError(origin, label, str(exc)) from None


def _refuse_unknown(data: Mapping[Any, Any], known: list[str], origin: str, key: str) -> None:
    """Refuse the first key of ``data`` that is not ``known``, with the closest known one as a hint."""
    for name in data:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(known)})"
            prefix = f"{origin}: " if origin != "<defaults>" else ""  # as _label names a key
            raise ConfigError(f"{prefix}unknown key '{_join(key, str(name))}'{hint}")


def _field_value(spec: Field[Any], raw: Any, tp: Any, origin: str, where: str) -> Any:
    """One key's value: counted (``at_most``), coerced to its type, then checked (``check``)."""
    if "at_most" in spec.metadata:
        _check_count(raw, *spec.metadata["at_most"], origin, where)
    value = _coerce(raw, tp, origin, where)
    if "check" in spec.metadata:
        predicate, expected = spec.metadata["check"]
        if value is not None and not predicate(value):
            raise _KeyError(origin, where, f"expected {expected}, got {raw!r}")
    return value


def _check_count(value: Any, limit: int, what: str, origin: str, where: str) -> None:
    if isinstance(value, list) and len(value) > limit:
        raise _KeyError(origin, where, f"expected at most {limit} {what}, got {len(value)}")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _coerce(value: Any, tp: Any, origin: str, where: str) -> Any:
    """Return ``value`` as type ``tp`` or raise a ConfigError that says what was expected."""
    origin_tp = get_origin(tp)
    if origin_tp in (Union, types.UnionType):
        options = [arg for arg in get_args(tp) if arg is not type(None)]
        if value is None:
            return None
        if any(get_origin(option) is Literal and value in get_args(option) for option in options[1:]):
            return value  # a word an int or str key also takes (detect_every: auto)
        return _coerce(value, options[0], origin, where)
    if is_dataclass(tp):
        return _build(tp, value, origin, where)
    if origin_tp is Literal:
        if value not in get_args(tp):
            raise _KeyError(origin, where, f"expected {choices(tp)}, got {value!r}")
        return value
    if origin_tp in (list, tuple):
        return _coerce_sequence(value, tp, origin, where)
    return _coerce_scalar(value, tp, origin, where)


def _coerce_sequence(value: Any, tp: Any, origin: str, where: str) -> list[Any] | tuple[Any, ...]:
    """A ``list[T]`` of any length, or a fixed ``tuple[...]`` (a point), item by item."""
    if get_origin(tp) is list:
        if not isinstance(value, list):
            raise _KeyError(origin, where, f"expected a list, got {_describe(value)}")
        (item_tp,) = get_args(tp)
        return [_coerce(item, item_tp, origin, f"{where}[{i}]") for i, item in enumerate(value)]
    item_types = get_args(tp)
    if not isinstance(value, list | tuple) or len(value) != len(item_types):
        raise _KeyError(origin, where, f"expected a point [x, y], got {_describe(value)}")
    return tuple(
        _coerce(item, t, origin, f"{where}[{i}]") for i, (item, t) in enumerate(zip(value, item_types, strict=True))
    )


def _coerce_scalar(value: Any, tp: type, origin: str, where: str) -> Any:
    """A bool, int, float or str; numbers also within :data:`MAX_NUMBER`."""
    expected_name = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
    )
    if not ok:
        raise _KeyError(origin, where, f"expected {expected_name[tp]}, got {_describe(value)}")
    if tp in (int, float):
        return _bounded(value, tp, origin, where)
    return value


def _bounded(value: int | float, tp: type, origin: str, where: str) -> int | float:
    """``value`` as ``tp``, refused beyond :data:`MAX_NUMBER` either way: no key means "never" or
    "unbounded" by ``.inf``, a NaN passes every range check (every comparison with it is false), and a
    huge duration, rate or count overflows where it is multiplied, converted or waited on."""
    try:
        number = float(value)
    except OverflowError:  # an integer beyond a float's range
        number = math.inf
    if not abs(number) <= MAX_NUMBER:  # NaN too
        raise _KeyError(
            origin, where, f"expected a number from -{MAX_NUMBER:,.0f} to {MAX_NUMBER:,.0f}, got {_describe(value)}"
        )
    return number if tp is float else value
