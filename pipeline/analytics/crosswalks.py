"""Pedestrians per crosswalk: each pedestrian track that walks across a crosswalk counts once.

A crosswalk is a line across it (a pedestrian walking the crosswalk crosses the line, e.g. one drawn
along the road's centre line; counted as a counting line counts, ``in`` or ``out``, with the same
hysteresis) or its polygon (a pedestrian whose anchor, the bottom centre of its box, entered the
polygon and, before leaving it or vanishing, got :data:`WALK_SHARE` of the polygon's length, the
longer side of its smallest enclosing rectangle, from where it entered: someone waiting on the kerb
inside the polygon does not count). Each track counts once per crosswalk. Only pedestrians are fed
to it (the class groups of kind ``pedestrian``); vehicles never count here.

A crossing is confirmed after it happened (across a line, ``min_crossing_distance`` beyond it; in a
polygon, when the pedestrian leaves it or is forgotten), so each event carries ``crossed_s``, when it
happened: when the anchor was on the line, or when its walk inside the polygon reached
:data:`WALK_SHARE` of its length, each interpolated between the sightings either side.

Example:
    >>> import numpy as np
    >>> walk = CrosswalkCounter("N", polygon=[(0, 0), (100, 0), (100, 20), (0, 20)])
    >>> events = []
    >>> for frame_index, x in enumerate([-10, 10, 40, 70, 95, 110]):  # one pedestrian walking across
    ...     person = sv.Detections(xyxy=np.array([[x - 4.0, 0.0, x + 4.0, 10.0]]), class_id=np.array([0]),
    ...         tracker_id=np.array([3]), data={"class_name": np.array(["person"])})
    ...     events += walk.update(person, frame_index, frame_index / 10)
    >>> [(e.crosswalk, e.direction, e.track_id, e.frame_index, e.crossed_s) for e in events], walk.counts
    ([('N', None, 3, 5, 0.2667)], Counter({None: 1}))
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv

from pipeline.analytics.events import CrosswalkCrossing, Direction
from pipeline.analytics.lines import LineCounter, tracked_anchors
from pipeline.geometry import Point

WALK_SHARE = 0.5
"""Share of a crosswalk polygon's length a pedestrian must walk inside it to count."""


@dataclass
class _Visit:
    entered: Point
    last_seen_s: float
    last_frame: int
    class_name: str
    last: Point
    """The anchor at ``last_seen_s``."""
    walked_s: float | None = None
    """When the walk inside reached the share that counts (None: not yet)."""
    inside: bool = True
    counted: bool = False


class CrosswalkCounter:
    """Counts pedestrians crossing one crosswalk, given as a line or a polygon.

    Args:
        name: The crosswalk's name.
        line: Two points across the crosswalk, or None.
        polygon: The crosswalk's outline, or None (give one of ``line`` and ``polygon``).
        min_crossing_distance: With a line: pixels beyond it an anchor must get for a crossing to count.
        forget_after_s: A track unseen this long is forgotten (with a polygon: counted if it walked far enough).

    Attributes:
        counts: Per direction (None for a polygon), pedestrians counted.
    """

    def __init__(
        self,
        name: str,
        line: Sequence[Point] | None = None,
        polygon: Sequence[Point] | None = None,
        min_crossing_distance: float = 6.0,
        forget_after_s: float = 2.0,
    ) -> None:
        self.name = name
        self.forget_after_s = forget_after_s
        # Every pedestrian counts (same_object_overlap 1): people walking side by side overlap.
        self._line = None if line is None else LineCounter(name, *line, min_crossing_distance, 1.0, (), forget_after_s)
        self.polygon = None if polygon is None else np.asarray(polygon, dtype=np.float32)
        self._walk_px = 0.0 if polygon is None else WALK_SHARE * max(cv2.minAreaRect(self.polygon)[1])
        self._visits: dict[int, _Visit] = {}
        self.counts: Counter[Direction | None] = Counter()

    @property
    def points(self) -> list[Point]:
        """Where it is on the image: the line's two points, or the polygon's."""
        if self._line is not None:
            return [self._line.start, self._line.end]
        assert self.polygon is not None
        return [(float(x), float(y)) for x, y in self.polygon]

    @property
    def tracks_held(self) -> int:
        return len(self._visits) + (self._line.tracks_held if self._line is not None else 0)

    def rescale(self, sx: float, sy: float) -> None:
        """Follow a change of the source's resolution; counts and the tracks being followed are kept."""
        if self._line is not None:
            self._line.rescale(sx, sy)
        if self.polygon is not None:
            self.polygon = self.polygon * np.float32([sx, sy])
            self._walk_px = WALK_SHARE * max(cv2.minAreaRect(self.polygon)[1])
            for visit in self._visits.values():
                visit.entered = (visit.entered[0] * sx, visit.entered[1] * sy)
                visit.last = (visit.last[0] * sx, visit.last[1] * sy)

    def update(self, pedestrians: sv.Detections, frame_index: int, timestamp_s: float) -> list[CrosswalkCrossing]:
        """Advance by one frame of tracked pedestrians; returns the crossings counted on it."""
        if self._line is not None:
            crossings = self._line.update(pedestrians, frame_index, timestamp_s)
            events = [
                CrosswalkCrossing(
                    c.frame_index,
                    c.timestamp_s,
                    self.name,
                    c.direction,
                    c.crossed_s,
                    track_id=c.track_id,
                    class_name=c.class_name,
                )
                for c in crossings
            ]
        else:
            events = self._walk(pedestrians, frame_index, timestamp_s)
        for event in events:
            self.record(event)
        return events

    def record(self, event: CrosswalkCrossing) -> None:
        """Add ``event`` to the counts (one this counter found, or an earlier run's)."""
        self.counts[event.direction] += 1

    def _walk(self, pedestrians: sv.Detections, frame_index: int, timestamp_s: float) -> list[CrosswalkCrossing]:
        """The polygon rule: count a visit when it ends (the anchor leaves or is forgotten) if it walked far."""
        assert self.polygon is not None
        events = []
        for track_id, anchor, class_name in tracked_anchors(pedestrians):
            inside = cv2.pointPolygonTest(self.polygon, anchor, False) >= 0
            visit = self._visits.get(track_id)
            if visit is None:
                if inside:
                    self._visits[track_id] = _Visit(anchor, timestamp_s, frame_index, class_name, anchor)
                continue
            counts = self._moved(visit, anchor, inside, frame_index, timestamp_s)
            visit.last, visit.last_seen_s, visit.class_name = anchor, timestamp_s, class_name
            if counts:
                events.append(self._crossing(track_id, visit, frame_index, timestamp_s))
        for track_id, visit in list(self._visits.items()):
            if timestamp_s - visit.last_seen_s > self.forget_after_s:
                del self._visits[track_id]
                if visit.inside and visit.walked_s is not None and not visit.counted:
                    events.append(self._crossing(track_id, visit, visit.last_frame, visit.last_seen_s))
        return events

    def _moved(self, visit: _Visit, anchor: Point, inside: bool, frame_index: int, timestamp_s: float) -> bool:
        """Follow a visit to the anchor's new place (seen at ``timestamp_s``); whether it now counts (it
        left, having walked far)."""
        if inside:
            if not visit.inside:  # back in: the walk starts again where it re-entered
                visit.inside, visit.entered = True, anchor
            visit.last_frame = frame_index
            if visit.walked_s is None and math.dist(anchor, visit.entered) >= self._walk_px:
                share = _reach(visit.last, anchor, visit.entered, self._walk_px)
                visit.walked_s = round(visit.last_seen_s + share * (timestamp_s - visit.last_seen_s), 4)
            return False
        counts = visit.inside and visit.walked_s is not None and not visit.counted
        visit.inside = False
        visit.counted = visit.counted or counts  # once per track: the visit stays held until forgotten
        return counts

    def _crossing(self, track_id: int, visit: _Visit, frame_index: int, timestamp_s: float) -> CrosswalkCrossing:
        return CrosswalkCrossing(
            frame_index, timestamp_s, self.name, None, visit.walked_s, track_id=track_id, class_name=visit.class_name
        )


def _reach(p0: Point, p1: Point, centre: Point, radius: float) -> float:
    """How far along the straight move from ``p0`` (closer to ``centre`` than ``radius``) to ``p1`` (not)
    it gets ``radius`` from ``centre``, from 0 to 1.

    Example:
        >>> _reach((0.0, 0.0), (10.0, 0.0), (-2.0, 0.0), 5.0)
        0.3
    """
    dx, dy, fx, fy = p1[0] - p0[0], p1[1] - p0[1], p0[0] - centre[0], p0[1] - centre[1]
    a, b, c = dx * dx + dy * dy, 2 * (fx * dx + fy * dy), fx * fx + fy * fy - radius * radius
    if a == 0 or c >= 0:  # no move, or already that far: the sighting itself
        return 1.0 if a == 0 else 0.0
    return min(1.0, (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a))
