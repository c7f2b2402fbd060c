"""Approaches of an intersection and what follows from where they lie: where a path meets them.

An approach is a polygon, a gate line across the leg (``in`` toward the intersection), or both.
The intersection (the box) is the convex hull of every approach; a track's heading, extended from
where it was lost (or back from where it was first seen), names the approach its path leads to.

Example:
    >>> west = Approach.placed([(0, 0), (100, 0), (100, 200), (0, 200)], None)
    >>> east = Approach.placed(None, [(300, 0), (300, 200)])  # the intersection on the gate's right
    >>> box = Intersection({"West": west, "East": east})
    >>> box.contains((200, 100)), box.path_meets((200, 100), (1.0, 0.0)), box.path_meets((200, 100), (0.0, 1.0))
    (True, 'East', None)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv

from pipeline.analytics.continuation import MotionTrail
from pipeline.analytics.lines import DirectedSegment
from pipeline.geometry import Point

MIN_HEADING_BOXES = 0.25
"""A path has a heading once its anchor moved this many box sizes (the box's longer side) over the
window: a vehicle standing still has none, and box jitter moves the anchor by a few percent."""


@dataclass
class Approach:
    """Where tracks enter and leave: a polygon, a gate line (``in`` toward the intersection), or both."""

    polygon: np.ndarray | None = None
    gate: DirectedSegment | None = None

    @classmethod
    def of(cls, value: Approach | Sequence[Point]) -> Approach:
        """``value`` itself, or the approach with ``value`` (a list of points) as its polygon."""
        return value if isinstance(value, Approach) else cls(polygon=np.asarray(value, dtype=float))

    @classmethod
    def placed(cls, polygon: Sequence[Point] | None, gate: Sequence[Point] | None) -> Approach:
        """The approach with this polygon and this gate (its two points), either of them None."""
        return cls(
            None if polygon is None else np.asarray(polygon, dtype=float),
            None if gate is None else DirectedSegment(gate[0], gate[1]),
        )

    @property
    def outline(self) -> np.ndarray:
        """What the overlay draws: the polygon, else the gate's two points."""
        return self.polygon if self.polygon is not None else np.array([self.gate.start, self.gate.end])

    def scaled(self, sx: float, sy: float) -> Approach:
        """This approach in a frame scaled by (sx, sy)."""
        polygon = None if self.polygon is None else self.polygon * (sx, sy)
        return Approach(polygon, None if self.gate is None else self.gate.scaled(sx, sy))

    def distance_beyond(self, point: Point) -> float:
        """How far ``point`` lies beyond the approach, toward the intersection: outside its polygon, on
        its gate's ``in`` side (the smaller of the two with both)."""
        distances = []
        if self.polygon is not None:
            distances.append(max(0.0, -cv2.pointPolygonTest(self.polygon.astype(np.float32), point, True)))
        if self.gate is not None:
            distances.append(self.gate.distance(point) if self.gate.side(point) > 0 else 0.0)
        return min(distances)

    def hit(self, p0: Point, p1: Point) -> float | None:
        """Where the path p0 -> p1 first reaches the approach, as a fraction of the way (None: it does
        not): into the polygon (0 if p0 is in it), or across the gate from its ``in`` side to its ``out`` side."""
        hits = []
        if self.polygon is not None:
            if cv2.pointPolygonTest(self.polygon.astype(np.float32), p0, False) >= 0:
                return 0.0
            for a, b in zip(self.polygon, np.roll(self.polygon, -1, axis=0), strict=True):
                if not np.array_equal(a, b):
                    hits.append(_crossing_fraction(DirectedSegment(tuple(a), tuple(b)), p0, p1))
        if self.gate is not None and self.gate.side(p0) > 0:
            hits.append(_crossing_fraction(self.gate, p0, p1))
        return min((fraction for fraction in hits if fraction is not None), default=None)


def _crossing_fraction(segment: DirectedSegment, p0: Point, p1: Point) -> float | None:
    """The fraction of the way p0 -> p1 at which it crosses ``segment`` (None: it does not)."""
    s0, s1 = segment.side(p0), segment.side(p1)
    if s0 == s1 or s0 * s1 > 0 or segment.crossing_position(p0, p1) is None:
        return None
    return s0 / (s0 - s1)


class Intersection:
    """Where the approaches lie: their polygons as anchor zones, the box (their convex hull), its size
    and centre, and which approach a path leads to.

    Args:
        approaches: Approach name to :class:`Approach`.

    Attributes:
        zones: A zone per approach polygon that a detection is in when its bottom-centre anchor is.
        size: How far a path is followed to the approach it leads to: the most distant approaches apart.
        centre: The mean of the approaches' centres.
    """

    def __init__(self, approaches: Mapping[str, Approach]) -> None:
        self.approaches = dict(approaches)
        self.zones = anchor_zones({name: a.polygon for name, a in approaches.items() if a.polygon is not None})
        outlines = [a.outline for a in approaches.values()]
        self._box = cv2.convexHull(np.concatenate(outlines).astype(np.float32))
        centres = np.array([outline.mean(axis=0) for outline in outlines])
        self.size = float(np.linalg.norm(centres[:, None] - centres[None], axis=2).max())
        self.centre: Point = tuple(centres.mean(axis=0))

    def contains(self, point: Point) -> bool:
        """Whether ``point`` is inside the intersection: the convex hull of every approach."""
        return cv2.pointPolygonTest(self._box, point, False) >= 0

    def path_meets(self, start: Point, direction: Point | None) -> str | None:
        """The first approach the path from ``start`` along ``direction`` (a unit vector) meets within
        the box's size; None for no direction or no approach."""
        if direction is None:
            return None
        end = (start[0] + direction[0] * self.size, start[1] + direction[1] * self.size)
        hits = [(hit, name) for name, a in self.approaches.items() if (hit := a.hit(start, end)) is not None]
        return min(hits)[1] if hits else None


def heading(trail: MotionTrail, backwards: bool = False) -> Point | None:
    """The unit direction of the anchor's motion over the trail (reversed ``backwards``); None if it
    moved less than :data:`MIN_HEADING_BOXES` of its box."""
    (x0, y0), (x1, y1) = trail.first, trail.last
    length = math.hypot(x1 - x0, y1 - y0)
    if length == 0 or length < MIN_HEADING_BOXES * max(trail.size_px):
        return None
    sign = -1 if backwards else 1
    return (sign * (x1 - x0) / length, sign * (y1 - y0) / length)


def anchor_zones(polygons: Mapping[str, np.ndarray]) -> dict[str, sv.PolygonZone]:
    """A zone per approach that a detection is in when its bottom-centre anchor is."""
    return {
        name: sv.PolygonZone(polygon.round().astype(int), triggering_anchors=(sv.Position.BOTTOM_CENTER,))
        for name, polygon in polygons.items()
    }
