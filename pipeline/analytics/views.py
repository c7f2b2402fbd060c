"""Frozen snapshots of the counters' state, for drawing on another thread.

The annotator runs behind the analytics stage (pipelining), so it must draw each frame with the
counts as they were on that frame, not as they are when it gets to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pipeline.geometry import Point

if TYPE_CHECKING:  # the counters import nothing from here, but keep the import graph one-way
    from pipeline.analytics.crosswalks import CrosswalkCounter
    from pipeline.analytics.lines import LineCounter
    from pipeline.analytics.movements import MovementCounter
    from pipeline.analytics.parking import ParkingMonitor
    from pipeline.analytics.zones import ZoneCounter


@dataclass(frozen=True)
class LineView:
    name: str
    start: Point
    end: Point
    in_total: int
    out_total: int


@dataclass(frozen=True)
class ZoneView:
    name: str
    polygon: np.ndarray
    count: int


@dataclass(frozen=True)
class ParkingView:
    polygons: dict[str, np.ndarray]
    occupied: dict[str, bool]

    @property
    def free_count(self) -> int:
        return sum(not occupied for occupied in self.occupied.values())


@dataclass(frozen=True)
class CrosswalkView:
    """A crosswalk: its line (2 points) or its polygon, and the pedestrians counted on it so far."""

    name: str
    points: np.ndarray
    is_line: bool
    count: int


@dataclass(frozen=True)
class MovementsView:
    """Approach outlines, the movements counted between them so far (``(origin, destination)``), the
    approaches' gates (start, end: their ``in`` side, toward the intersection, on the right), and the
    crosswalks."""

    approaches: dict[str, np.ndarray]
    counts: dict[tuple[str, str], int]
    gates: dict[str, np.ndarray] = field(default_factory=dict)
    crosswalks: tuple[CrosswalkView, ...] = ()


@dataclass(frozen=True)
class AnalyticsView:
    """What the overlays show on one frame."""

    lines: tuple[LineView, ...] = ()
    zones: tuple[ZoneView, ...] = ()
    parking: ParkingView | None = None
    movements: MovementsView | None = None


def movements_snapshot(
    movements: MovementCounter | None, crosswalks: Sequence[CrosswalkCounter] = ()
) -> MovementsView | None:
    """The approaches, the counts between them and the crosswalks (None with neither a movement
    counter nor a crosswalk)."""
    walks = tuple(
        CrosswalkView(w.name, np.array(w.points, dtype=float), w.polygon is None, sum(w.counts.values()))
        for w in crosswalks
    )
    if movements is None:
        return MovementsView({}, {}, crosswalks=walks) if walks else None
    counts = {pair: movements.total(*pair) for pair in movements.pairs}
    gates = {
        name: np.array([a.gate.start, a.gate.end], dtype=float)
        for name, a in movements.approaches.items()
        if a.gate is not None
    }
    return MovementsView(dict(movements.polygons), counts, gates, walks)


def snapshot(
    lines: Sequence[LineCounter],
    zones: Sequence[ZoneCounter],
    parking: ParkingMonitor | None,
    movements: MovementCounter | None,
    crosswalks: Sequence[CrosswalkCounter] = (),
) -> AnalyticsView:
    """A frozen :class:`AnalyticsView` of the counters as they are now."""
    return AnalyticsView(
        lines=tuple(LineView(line.name, line.start, line.end, line.in_total, line.out_total) for line in lines),
        zones=tuple(ZoneView(zone.name, zone.polygon, zone.count) for zone in zones),
        parking=ParkingView(parking.polygons, parking.occupied) if parking is not None else None,
        movements=movements_snapshot(movements, crosswalks),
    )
