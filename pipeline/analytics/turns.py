"""Left, through, right or U-turn: a movement's turn from the approaches' geometry.

Each approach has an **inbound heading**, the direction a vehicle entering by it drives: across its
gate toward the gate's ``in`` side (the intersection's), or, for an approach without a gate, from its
polygon's centre toward the intersection's centre (the mean of the approaches' centres). A vehicle
leaving by an approach drives opposite to that approach's inbound heading. The turn of ``A->B`` is
the angle from A's inbound heading to B's outbound heading, clockwise as seen on the image (from
above: a camera looking down at the road does not mirror it), in (-180, 180] degrees:

- ``through`` within :data:`THROUGH_DEG` of straight on,
- ``right`` from there to :data:`U_TURN_DEG` clockwise, ``left`` the same counter-clockwise,
- ``u_turn`` beyond that, and always for ``A->A``.

On a skewed intersection a leg may meet the others at 60 degrees instead of 90: its turns stay what
they are up to a skew of 45 degrees.

Example:
    >>> turn_of((0.0, -1.0), (1.0, 0.0)), turn_of((0.0, -1.0), (-1.0, 0.0)), turn_of((0.0, -1.0), (0.2, -1.0))
    ('right', 'left', 'through')
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from pipeline.analytics.approaches import Approach
from pipeline.geometry import Point

THROUGH_DEG = 45.0
"""Largest angle between entry and exit headings that is still straight on."""
U_TURN_DEG = 135.0
"""Smallest angle between entry and exit headings that turns the vehicle round."""


def turn_angle_deg(entry: Point, exit_: Point) -> float:
    """The angle from heading ``entry`` to heading ``exit_``, clockwise on the image (y down), in degrees.

    Example:
        >>> turn_angle_deg((1.0, 0.0), (0.0, 1.0))  # east, then down the image: clockwise
        90.0
    """
    cross = entry[0] * exit_[1] - entry[1] * exit_[0]
    dot = entry[0] * exit_[0] + entry[1] * exit_[1]
    return math.degrees(math.atan2(cross, dot))


def turn_of(entry: Point, exit_: Point) -> str:
    """``left``, ``through``, ``right`` or ``u_turn`` for a vehicle entering with heading ``entry`` and
    leaving with heading ``exit_``."""
    angle = turn_angle_deg(entry, exit_)
    if abs(angle) <= THROUGH_DEG:
        return "through"
    if abs(angle) >= U_TURN_DEG:
        return "u_turn"
    return "right" if angle > 0 else "left"


def inbound_heading(approach: Approach, centre: Point) -> Point:
    """The unit direction of a vehicle entering by ``approach`` (see the module's docstring)."""
    if approach.gate is not None:
        (x0, y0), (x1, y1) = approach.gate.start, approach.gate.end
        normal = np.array([-(y1 - y0), x1 - x0], dtype=float)
        middle = ((x0 + x1) / 2 + normal[0], (y0 + y1) / 2 + normal[1])
        direction = normal if approach.gate.side(middle) > 0 else -normal
    else:
        direction = np.asarray(centre, dtype=float) - approach.outline.mean(axis=0)
    length = float(np.linalg.norm(direction))
    return (1.0, 0.0) if length == 0 else (float(direction[0] / length), float(direction[1] / length))


def turn_table(approaches: Mapping[str, Approach], centre: Point) -> dict[tuple[str, str], str]:
    """The turn of every movement between ``approaches`` (U-turns included), for an intersection
    centred on ``centre``."""
    inbound = {name: inbound_heading(approach, centre) for name, approach in approaches.items()}
    return {
        (origin, destination): "u_turn"
        if origin == destination
        else turn_of(inbound[origin], (-inbound[destination][0], -inbound[destination][1]))
        for origin in approaches
        for destination in approaches
    }
