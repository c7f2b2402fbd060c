"""Building blocks of the config sections: field checks and the values they accept."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, get_args


def check(predicate: Callable[[Any], bool], expected: str) -> dict[str, Any]:
    """Field metadata: a value must satisfy ``predicate``; ``expected`` says what it should be."""
    return {"check": (predicate, expected)}


def choices(literal: Any) -> str:
    """What a field typed ``Literal[...]`` accepts, in words, for its error message (the loader checks
    the value against the same ``Literal``, so the values are written once).

    Example:
        >>> from typing import Literal
        >>> choices(Literal["auto", "latest", "all"]), choices(Literal["pixels", "normalized"])
        ('auto, latest or all', 'pixels or normalized')
    """
    *others, last = get_args(literal)
    return f"{', '.join(others)} or {last}" if others else last


MAX_NUMBER = 1e9
"""The largest size of any number in a config (about 31 years in seconds): far beyond any real value,
and small enough that a duration times a frame rate is still a count, and that a thread can wait that
long (``threading.TIMEOUT_MAX``)."""


def at_most(limit: int, what: str) -> dict[str, Any]:
    """Field metadata: a list of at most ``limit`` items (``what``: e.g. "zones"), counted before its
    items are checked."""
    return {"at_most": (limit, what)}


TIME_FORMAT = "an ISO 8601 date and time such as 2024-05-01T07:00:00"


def parse_time(text: str) -> float | None:
    """Unix time of an ISO 8601 date and time (UTC unless it has an offset); None if it is not one.

    Example:
        >>> parse_time("1970-01-01T01:00:00Z"), parse_time("1970-01-01T01:00:00+01:00"), parse_time("7am")
        (3600.0, 0.0, None)
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


UNIT_INTERVAL = check(lambda v: 0 <= v <= 1, "a number between 0 and 1")

NON_EMPTY_NAME = check(lambda v: v.strip() != "", "a non-empty name")

FOUR_POINTS = check(lambda v: len(v) == 4, "a list of 4 points")

ENV_NAME = check(lambda v: re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v) is not None, "an environment variable name")


def key_label(origin: str, flags: Mapping[str, str], key: str) -> str:
    """How an error names ``key``: the flag that set it (``--conf``), else ``file: key`` (``key`` alone
    without a file)."""
    for flag_key, flag in flags.items():
        if key == flag_key:
            return flag
        if key.startswith((f"{flag_key}.", f"{flag_key}[")):
            return f"{flag}: {key}"
    return f"{origin}: {key}" if origin != "<defaults>" else key


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "kb": 1e3, "mb": 1e6, "gb": 1e9}


def parse_rotation(text: str) -> tuple[str, float] | None:
    """Parse a rotation spec: ``("time", seconds)`` for 30s/10m/1h/1d, ``("size", bytes)`` for 500KB/100MB/2GB."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", text)
    if not match or match[2].lower() not in _UNITS or float(match[1]) <= 0:
        return None
    kind = "size" if match[2].lower().endswith("b") else "time"
    return kind, float(match[1]) * _UNITS[match[2].lower()]
