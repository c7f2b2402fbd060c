"""Line crossing counts: pure geometry and per-track state, no drawing, no I/O.

Rules (each has an exact test in ``tests/test_lines.py``):

- A crossing is the anchor's motion segment (previous position to current position) passing
  through the line segment, so an object that jumps over the line between two frames still counts
  and one that passes beside the segment's end does not.
- Direction: ``in`` is going from the negative to the positive side of
  cross(end - start, anchor - start); for a line drawn left to right, moving down the image.
- Hysteresis: a crossing is confirmed once the anchor is ``min_crossing_distance`` pixels beyond
  the line; coming back before that cancels it, so jitter on the line counts nothing extra.
- A track counts at most once per line and direction. Detections without a track ID never count.

Example:
    >>> import numpy as np
    >>> counter = LineCounter("main", start=(0, 100), end=(200, 100), min_crossing_distance=5)
    >>> for frame_index, y in enumerate([80, 95, 120]):  # moving down across a left-to-right line
    ...     detections = sv.Detections(
    ...         xyxy=np.array([[90.0, y - 20.0, 110.0, float(y)]]), class_id=np.array([2]),
    ...         tracker_id=np.array([7]), data={"class_name": np.array(["car"])})
    ...     events = counter.update(detections, frame_index, frame_index / 30)
    >>> [(e.direction, e.track_id, e.frame_index) for e in events]
    [('in', 7, 2)]
    >>> counter.crossings_in
    Counter({'car': 1})
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import supervision as sv

from pipeline.analytics.events import Direction, LineCrossing
from pipeline.geometry import Point


def _cross(origin: Point, a: Point, b: Point) -> float:
    """z of (a - origin) x (b - origin): > 0 when b is on the positive side of origin->a."""
    return (a[0] - origin[0]) * (b[1] - origin[1]) - (a[1] - origin[1]) * (b[0] - origin[0])


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def class_names_of(detections: sv.Detections) -> list[str]:
    """Class names per detection, falling back to the class id as text."""
    if "class_name" in detections.data:
        return [str(name) for name in detections.data["class_name"]]
    if detections.class_id is not None:
        return [str(class_id) for class_id in detections.class_id]
    return ["object"] * len(detections)


def tracked_anchors(
    detections: sv.Detections, anchor: sv.Position = sv.Position.BOTTOM_CENTER
) -> list[tuple[int, Point, str]]:
    """(track_id, anchor point, class name) for each tracked detection; untracked ones are skipped."""
    if detections.tracker_id is None or len(detections) == 0:
        return []
    points = detections.get_anchors_coordinates(anchor)
    return [
        (int(track_id), (float(point[0]), float(point[1])), name)
        for track_id, point, name in zip(detections.tracker_id, points, class_names_of(detections), strict=True)
    ]


@dataclass(frozen=True)
class Lane:
    """A named sub-segment of a counting line."""

    name: str
    start: Point
    end: Point


@dataclass
class _TrackState:
    point: Point
    side: int
    """Confirmed side of the line: +1, -1, or 0 while the track has only been seen on it."""
    last_seen_s: float
    pending: tuple[Direction, str | None] | None = None
    """A crossing seen but not yet ``min_crossing_distance`` beyond the line: (direction, lane)."""
    counted: set[Direction] = field(default_factory=set)


class LineCounter:
    """Counts tracks crossing a directed line segment, per class, direction and lane.

    Args:
        name: The line's name, used in events and outputs.
        start: First end point in pixels.
        end: Second end point. Moving from the negative to the positive side of
            cross(end - start, anchor - start) is ``in``: for a line drawn left to right, moving down.
        min_crossing_distance: Pixels beyond the line an anchor must reach to confirm a crossing.
        lanes: Optional sub-segments; a crossing is attributed to the lane whose stretch of the
            line (the lane's end points projected onto it) contains the crossing point.
        forget_after_s: Drop a track's state once it has not been seen for this long, so memory
            stays bounded on endless feeds. Set it at least as long as the tracker's buffer.
        anchor: Which point of the box represents the object.

    Attributes:
        crossings_in: Count of ``in`` crossings per class name.
        crossings_out: Count of ``out`` crossings per class name.
        lane_counts: Per lane, count per direction.
    """

    def __init__(
        self,
        name: str,
        start: Point,
        end: Point,
        min_crossing_distance: float = 0.0,
        lanes: Sequence[Lane] = (),
        forget_after_s: float = 5.0,
        anchor: sv.Position = sv.Position.BOTTOM_CENTER,
    ) -> None:
        self.name = name
        self.start = (float(start[0]), float(start[1]))
        self.end = (float(end[0]), float(end[1]))
        self.min_crossing_distance = min_crossing_distance
        self.forget_after_s = forget_after_s
        self.anchor = anchor
        self._length = math.dist(self.start, self.end)
        self.lanes = list(lanes)
        self._lane_spans = [
            tuple(sorted((self._position_along(lane.start), self._position_along(lane.end)))) for lane in lanes
        ]
        self.crossings_in: Counter[str] = Counter()
        self.crossings_out: Counter[str] = Counter()
        self.lane_counts: dict[str, Counter[str]] = {lane.name: Counter() for lane in self.lanes}
        self._tracks: dict[int, _TrackState] = {}

    @property
    def in_total(self) -> int:
        return sum(self.crossings_in.values())

    @property
    def out_total(self) -> int:
        return sum(self.crossings_out.values())

    @property
    def tracks_held(self) -> int:
        """Number of tracks with state in memory (bounded by pruning)."""
        return len(self._tracks)

    def side(self, point: Point) -> float:
        """Signed side of ``point``: > 0 on the ``in`` side, < 0 on the ``out`` side, 0 on the line."""
        return _cross(self.start, self.end, point)

    def distance(self, point: Point) -> float:
        """Perpendicular distance from ``point`` to the (infinite) line, in pixels."""
        return abs(self.side(point)) / self._length

    def _position_along(self, point: Point) -> float:
        """Projection of ``point`` onto the line: 0 at ``start``, 1 at ``end``."""
        dx, dy = self.end[0] - self.start[0], self.end[1] - self.start[1]
        return ((point[0] - self.start[0]) * dx + (point[1] - self.start[1]) * dy) / self._length**2

    def _crossing_position(self, p0: Point, p1: Point) -> float | None:
        """Where the motion p0 -> p1 (which changes side) meets the line, as a position along the
        segment, or None if it passes beside the segment."""
        if _cross(p0, p1, self.start) * _cross(p0, p1, self.end) > 0:
            return None
        s0, s1 = self.side(p0), self.side(p1)
        fraction = s0 / (s0 - s1)
        hit = (p0[0] + fraction * (p1[0] - p0[0]), p0[1] + fraction * (p1[1] - p0[1]))
        return self._position_along(hit)

    def _lane_at(self, position: float) -> str | None:
        for lane, (low, high) in zip(self.lanes, self._lane_spans, strict=True):
            if low <= position <= high:
                return lane.name
        return None

    def update(self, detections: sv.Detections, frame_index: int, timestamp_s: float) -> list[LineCrossing]:
        """Advance by one frame of tracked detections; returns the crossings confirmed on this frame."""
        events: list[LineCrossing] = []
        for track_id, point, class_name in tracked_anchors(detections, self.anchor):
            crossing = self._update_track(track_id, point, timestamp_s)
            if crossing is not None:
                direction, lane = crossing
                (self.crossings_in if direction == "in" else self.crossings_out)[class_name] += 1
                if lane is not None:
                    self.lane_counts[lane][direction] += 1
                events.append(LineCrossing(frame_index, timestamp_s, self.name, direction, track_id, class_name, lane))
        self._forget_stale(timestamp_s)
        return events

    def _update_track(self, track_id: int, point: Point, now_s: float) -> tuple[Direction, str | None] | None:
        sign = _sign(self.side(point))
        state = self._tracks.get(track_id)
        if state is None:
            self._tracks[track_id] = _TrackState(point, sign, now_s)
            return None
        previous, state.point, state.last_seen_s = state.point, point, now_s
        if state.side == 0 or sign == 0:  # on the line: wait until it leaves to know where it went
            state.side = state.side or sign
            return None
        if sign == state.side:
            state.pending = None  # stayed, or came back before the crossing was confirmed
            return None
        if state.pending is None:
            position = self._crossing_position(previous, point)
            if position is None:  # went around the segment's end: now on the other side, no crossing
                state.side = sign
                return None
            state.pending = ("in" if sign > 0 else "out", self._lane_at(position))
        if self.distance(point) < self.min_crossing_distance:
            return None
        crossing, state.pending, state.side = state.pending, None, sign
        if crossing[0] in state.counted:
            return None
        state.counted.add(crossing[0])
        return crossing

    def rescale(self, sx: float, sy: float) -> None:
        """Follow a change of the source's resolution: scale the geometry and the tracks' last
        positions by (sx, sy); counts are kept."""

        def scale(p: Point) -> Point:
            return (p[0] * sx, p[1] * sy)

        self.start, self.end = scale(self.start), scale(self.end)
        self._length = math.dist(self.start, self.end)
        self.lanes = [Lane(lane.name, scale(lane.start), scale(lane.end)) for lane in self.lanes]
        for state in self._tracks.values():
            state.point = scale(state.point)

    def _forget_stale(self, now_s: float) -> None:
        stale = [tid for tid, state in self._tracks.items() if now_s - state.last_seen_s > self.forget_after_s]
        for track_id in stale:
            del self._tracks[track_id]
