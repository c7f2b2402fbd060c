"""Durations on the command line: ``10m``, ``90s``, ``1h30m``, ``4.2s``, ``250ms`` or plain seconds.

Parsed to exact :class:`~fractions.Fraction` seconds, so slice boundaries computed from them are
the same on every machine (no float rounding at a boundary).

Example:
    >>> parse_duration("1h30m")
    Fraction(5400, 1)
    >>> parse_duration("4.2s")
    Fraction(21, 5)
    >>> format_duration(Fraction(5400))
    '1h30m'
"""

from __future__ import annotations

import re
from fractions import Fraction

_UNITS = {"h": Fraction(3600), "m": Fraction(60), "s": Fraction(1), "ms": Fraction(1, 1000)}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str) -> Fraction:
    """Parse a duration such as ``10m``, ``90s``, ``1h``, ``1h30m``, ``2.5s`` or ``30`` (seconds).

    Args:
        text: The duration; units ``h``, ``m``, ``s`` and ``ms`` may be combined, largest first.

    Returns:
        The duration in seconds, exactly.

    Raises:
        ValueError: ``text`` is not a duration.
    """
    spec = text.strip().lower()
    if _NUMBER.fullmatch(spec):
        return Fraction(spec)
    total, position = Fraction(0), 0
    for part in _PART.finditer(spec):
        if part.start() != position:
            break
        total += Fraction(part.group(1)) * _UNITS[part.group(2)]
        position = part.end()
    if position == 0 or position != len(spec):
        raise ValueError(f"expected a duration such as 10m, 90s, 1h30m or 4.5s, got {text!r}")
    return total


def format_duration(seconds: Fraction | float) -> str:
    """The shortest ``h``/``m``/``s`` spelling of a duration (fractions of a second as decimals)."""
    value = Fraction(seconds).limit_denominator(1000)
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{int(hours)}h" if hours else "", f"{int(minutes)}m" if minutes else ""]
    if secs or not (hours or minutes):
        parts.append(f"{float(secs):g}s")
    return "".join(parts)


def is_duration(text: object) -> bool:
    """Whether ``text`` is a duration :func:`parse_duration` accepts and longer than zero.

    Example:
        >>> is_duration("15m"), is_duration("0s"), is_duration("soon")
        (True, False, False)
    """
    try:
        return isinstance(text, str) and parse_duration(text) > 0
    except ValueError:
        return False
