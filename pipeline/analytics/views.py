"""Frozen snapshots of the counters' state, for drawing on another thread.

The annotator runs behind the analytics stage (pipelining), so it must draw each frame with the
counts as they were on that frame, not as they are when it gets to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.geometry import Point


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
class MovementsView:
    """Approach polygons and the movements counted between them so far (``(origin, destination)``)."""

    approaches: dict[str, np.ndarray]
    counts: dict[tuple[str, str], int]


@dataclass(frozen=True)
class AnalyticsView:
    """What the overlays show on one frame."""

    lines: tuple[LineView, ...] = ()
    zones: tuple[ZoneView, ...] = ()
    parking: ParkingView | None = None
    movements: MovementsView | None = None
