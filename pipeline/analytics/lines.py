"""Line crossing counts: pure geometry and per-track state, no drawing, no I/O.

Rules (each has an exact test in ``tests/test_lines.py`` or ``tests/test_one_object_one_count.py``):

- A crossing is the anchor's motion segment (previous position to current position) passing
  through the line segment, so an object that jumps over the line between two frames still counts
  and one that passes beside the segment's end does not.
- Direction: ``in`` is going from the negative to the positive side of
  cross(end - start, anchor - start); for a line drawn left to right, moving down the image.
- Hysteresis: a crossing is confirmed once the anchor is ``min_crossing_distance`` pixels beyond
  the line; coming back before that cancels it, so jitter on the line counts nothing extra.
- A track counts at most once per line and direction. Detections without a track ID never count.
- A box cut off by the frame's left, right or bottom edge (``detections.data["at_edge"]``) says
  nothing about where the object touches the road: it neither moves the track nor counts.
- One object, one count: a track whose box lies mostly inside the box of a track that counted the
  same line and direction in the last :data:`SAME_OBJECT_WINDOW_S` (or around it: a lorry and its
  load, a rider and their bicycle, each tracked) is the same object, and does not count again.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import supervision as sv

from pipeline.analytics.events import Direction, LineCrossing
from pipeline.geometry import Point, containment, cross

SAME_OBJECT_WINDOW_S = 2.0
"""How long after a track counts a second track on the same object (one box inside the other) is
taken for it: parts of one vehicle, or a rider and their bicycle, cross within a second or two."""


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


@dataclass(frozen=True)
class Crossing:
    """A track's crossing of a line: its direction, lane and when the anchor was on the line."""

    direction: Direction
    lane: str | None
    crossed_s: float


@dataclass
class _TrackState:
    point: Point
    side: int
    """Confirmed side of the line: +1, -1, or 0 while the track has only been seen on it."""
    last_seen_s: float
    pending: Crossing | None = None
    """A crossing seen but not yet ``min_crossing_distance`` beyond the line."""
    counted: dict[Direction, float] = field(default_factory=dict)
    """When the track's crossing in each direction was confirmed."""

    def move_to(self, point: Point, now_s: float, segment: DirectedSegment, min_distance: float) -> Crossing | None:
        """Record the track's next position; the crossing it confirms, if any (at most one per
        direction per track)."""
        sign = _sign(segment.side(point))
        previous, previous_s = self.point, self.last_seen_s
        self.point, self.last_seen_s = point, now_s
        if self.side == 0 or sign == 0:  # on the line: wait until it leaves to know where it went
            self.side = self.side or sign
            return None
        if sign == self.side:
            self.pending = None  # stayed, or came back before the crossing was confirmed
            return None
        if self.pending is None:
            position = segment.crossing_position(previous, point)
            if position is None:  # went around the segment's end: now on the other side, no crossing
                self.side = sign
                return None
            crossed_s = segment.crossing_time(previous, previous_s, point, now_s)
            self.pending = Crossing("in" if sign > 0 else "out", segment.lane_at(position), crossed_s)
        if segment.distance(point) < min_distance:
            return None
        crossing, self.pending, self.side = self.pending, None, sign
        if crossing.direction in self.counted:
            return None
        self.counted[crossing.direction] = now_s
        return crossing


class DirectedSegment:
    """A line segment with a direction, and the lanes along it.

    Args:
        start: First end point in pixels.
        end: Second end point. Moving from the negative to the positive side of
            cross(end - start, point - start) is ``in``: for a segment drawn left to right, moving down.
        lanes: Sub-segments; a crossing point belongs to the lane whose stretch of the segment (the
            lane's end points projected onto it) contains it.

    Example:
        >>> segment = DirectedSegment((0, 10), (100, 10), [Lane("left", (0, 10), (50, 10))])
        >>> segment.side((20, 30)) > 0, segment.distance((20, 30))
        (True, 20.0)
        >>> position = segment.crossing_position((20, 0), (20, 30))
        >>> position, segment.lane_at(position)
        (0.2, 'left')
    """

    def __init__(self, start: Point, end: Point, lanes: Sequence[Lane] = ()) -> None:
        self.start = (float(start[0]), float(start[1]))
        self.end = (float(end[0]), float(end[1]))
        self.lanes = list(lanes)
        self._length = math.dist(self.start, self.end)
        self._lane_spans = [
            tuple(sorted((self.position_along(lane.start), self.position_along(lane.end)))) for lane in lanes
        ]

    def side(self, point: Point) -> float:
        """Signed side of ``point``: > 0 on the ``in`` side, < 0 on the ``out`` side, 0 on the line."""
        return cross(self.start, self.end, point)

    def distance(self, point: Point) -> float:
        """Perpendicular distance from ``point`` to the (infinite) line, in pixels."""
        return abs(self.side(point)) / self._length

    def position_along(self, point: Point) -> float:
        """Projection of ``point`` onto the line: 0 at ``start``, 1 at ``end``."""
        dx, dy = self.end[0] - self.start[0], self.end[1] - self.start[1]
        return ((point[0] - self.start[0]) * dx + (point[1] - self.start[1]) * dy) / self._length**2

    def crossing_position(self, p0: Point, p1: Point) -> float | None:
        """Where the motion p0 -> p1 (which changes side) meets the line, as a position along the
        segment, or None if it passes beside the segment."""
        if cross(p0, p1, self.start) * cross(p0, p1, self.end) > 0:
            return None
        s0, s1 = self.side(p0), self.side(p1)
        fraction = s0 / (s0 - s1)
        hit = (p0[0] + fraction * (p1[0] - p0[0]), p0[1] + fraction * (p1[1] - p0[1]))
        return self.position_along(hit)

    def crossing_time(self, p0: Point, t0_s: float, p1: Point, t1_s: float) -> float:
        """When the motion from ``p0`` (at ``t0_s``) to ``p1`` (at ``t1_s``), at constant speed, is on
        the line.

        Example:
            >>> DirectedSegment((0, 10), (100, 10)).crossing_time((20, 0), 1.0, (20, 40), 2.0)
            1.25
        """
        s0, s1 = self.side(p0), self.side(p1)
        return t0_s + (t1_s - t0_s) * s0 / (s0 - s1) if s0 != s1 else t1_s

    def lane_at(self, position: float) -> str | None:
        """The lane at ``position`` along the segment, if any."""
        for lane, (low, high) in zip(self.lanes, self._lane_spans, strict=True):
            if low <= position <= high:
                return lane.name
        return None

    def scaled(self, sx: float, sy: float) -> DirectedSegment:
        """This segment (and its lanes) in a frame scaled by (sx, sy)."""

        def scale(p: Point) -> Point:
            return (p[0] * sx, p[1] * sy)

        lanes = [Lane(lane.name, scale(lane.start), scale(lane.end)) for lane in self.lanes]
        return DirectedSegment(scale(self.start), scale(self.end), lanes)


class LineCounter:
    """Counts tracks crossing a directed line segment, per class, direction and lane.

    Args:
        name: The line's name, used in events and outputs.
        start: First end point in pixels.
        end: Second end point. Moving from the negative to the positive side of
            cross(end - start, anchor - start) is ``in``: for a line drawn left to right, moving down.
        min_crossing_distance: Pixels beyond the line an anchor must reach to confirm a crossing.
        same_object_overlap: From this much of one box inside another (:func:`~pipeline.geometry.containment`),
            two tracks are one object for counting; 1 or more counts every track.
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
        same_object_overlap: float = 1.0,
        lanes: Sequence[Lane] = (),
        forget_after_s: float = 5.0,
        anchor: sv.Position = sv.Position.BOTTOM_CENTER,
    ) -> None:
        self.name = name
        self.segment = DirectedSegment(start, end, lanes)
        self.min_crossing_distance = min_crossing_distance
        self.same_object_overlap = same_object_overlap
        self.forget_after_s = forget_after_s
        self.anchor = anchor
        self.crossings_in: Counter[str] = Counter()
        self.crossings_out: Counter[str] = Counter()
        self.lane_counts: dict[str, Counter[str]] = {lane.name: Counter() for lane in lanes}
        self._tracks: dict[int, _TrackState] = {}

    @property
    def start(self) -> Point:
        return self.segment.start

    @property
    def end(self) -> Point:
        return self.segment.end

    @property
    def lanes(self) -> list[Lane]:
        return self.segment.lanes

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

    def update(self, detections: sv.Detections, frame_index: int, timestamp_s: float) -> list[LineCrossing]:
        """Advance by one frame of tracked detections; returns the crossings confirmed on this frame.

        A track seen for the first time starts from its previous observed box
        (``detections.data["previous_xyxy"]``, from the tracker, seen ``previous_age_s`` earlier)
        when it has one: a track confirmed only on its second sighting, after it crossed, still counts.
        """
        events: list[LineCrossing] = []
        anchors = tracked_anchors(detections, self.anchor)
        if "at_edge" in detections.data:
            anchors = [anchor for anchor, cut in zip(anchors, detections.data["at_edge"], strict=True) if not cut]
        if any(track_id not in self._tracks for track_id, _, _ in anchors):
            self._start_new_tracks(detections, timestamp_s)
        for track_id, point, class_name in anchors:
            crossing = self._update_track(track_id, point, timestamp_s)
            if crossing is None or self._counted_as_another(track_id, crossing.direction, detections, timestamp_s):
                continue
            event = LineCrossing(
                frame_index,
                timestamp_s,
                self.name,
                crossing.direction,
                crossing.lane,
                round(crossing.crossed_s, 4),
                track_id=track_id,
                class_name=class_name,
            )
            self.record(event)
            events.append(event)
            self._share_count(track_id, crossing.direction, detections, timestamp_s)
        self._forget_stale(timestamp_s)
        return events

    def record(self, crossing: LineCrossing) -> None:
        """Add ``crossing`` to the counts (one this counter found, or an earlier run's)."""
        (self.crossings_in if crossing.direction == "in" else self.crossings_out)[crossing.class_name] += 1
        if crossing.lane in self.lane_counts:
            self.lane_counts[crossing.lane][crossing.direction] += 1

    def _on_same_object(
        self, track_id: int, detections: sv.Detections, include: Callable[[_TrackState], bool]
    ) -> list[int]:
        """The other tracks on this frame, among those ``include`` accepts, on the same object as
        ``track_id``: one box mostly inside the other, and their anchors closer than half the smaller
        box's size."""
        if self.same_object_overlap >= 1:
            return []
        track_ids = detections.tracker_id.tolist()
        others = [
            index
            for index, other in enumerate(track_ids)
            if other != track_id and other in self._tracks and include(self._tracks[other])
        ]
        if not others:
            return []
        group = detections.xyxy[[track_ids.index(track_id), *others]]
        nested = containment(group[0], group[1:])[0] >= self.same_object_overlap
        # Parts of one object touch the road at one place; two vehicles side by side, one box drawn
        # around both, do not: their anchors are a vehicle's width apart.
        anchors = sv.Detections(xyxy=group).get_anchors_coordinates(self.anchor)
        sizes = np.sqrt(np.prod(group[:, 2:] - group[:, :2], axis=1))
        close = np.linalg.norm(anchors[1:] - anchors[0], axis=1) <= np.minimum(sizes[1:], sizes[0]) / 2
        return [track_ids[index] for index, same in zip(others, nested & close, strict=True) if same]

    def _counted_as_another(self, track_id: int, direction: Direction, detections: sv.Detections, now_s: float) -> bool:
        """Whether a track on the same object as this one, on this frame, counted this direction in
        the last :data:`SAME_OBJECT_WINDOW_S`."""

        def counted_lately(state: _TrackState) -> bool:
            return now_s - state.counted.get(direction, -math.inf) <= SAME_OBJECT_WINDOW_S

        return bool(self._on_same_object(track_id, detections, counted_lately))

    def _share_count(self, track_id: int, direction: Direction, detections: sv.Detections, now_s: float) -> None:
        """Mark the tracks on the same object as the one that just counted as counted too: a rider's
        box crossing after their bicycle's does not count again."""
        for other in self._on_same_object(track_id, detections, lambda _: True):
            self._tracks[other].counted.setdefault(direction, now_s)

    def _start_new_tracks(self, detections: sv.Detections, now_s: float) -> None:
        previous = detections.data.get("previous_xyxy")
        if previous is None:
            return
        previous = np.asarray(previous, dtype=float).reshape(-1, 4)
        ages_s = np.nan_to_num(np.asarray(detections.data.get("previous_age_s", np.zeros(len(previous))), float))
        known = np.isfinite(previous).all(axis=1)
        points = sv.Detections(xyxy=np.where(known[:, None], previous, 0.0)).get_anchors_coordinates(self.anchor)
        for track_id, point, usable, age_s in zip(detections.tracker_id, points, known, ages_s, strict=True):
            if usable and int(track_id) not in self._tracks:
                self._update_track(int(track_id), (float(point[0]), float(point[1])), now_s - age_s)

    def _update_track(self, track_id: int, point: Point, now_s: float) -> Crossing | None:
        state = self._tracks.get(track_id)
        if state is None:
            self._tracks[track_id] = _TrackState(point, _sign(self.segment.side(point)), now_s)
            return None
        return state.move_to(point, now_s, self.segment, self.min_crossing_distance)

    def rescale(self, sx: float, sy: float) -> None:
        """Follow a change of the source's resolution: scale the geometry and the tracks' last
        positions by (sx, sy); counts are kept."""

        self.segment = self.segment.scaled(sx, sy)
        for state in self._tracks.values():
            state.point = (state.point[0] * sx, state.point[1] * sy)

    def _forget_stale(self, now_s: float) -> None:
        stale = [tid for tid, state in self._tracks.items() if now_s - state.last_seen_s > self.forget_after_s]
        for track_id in stale:
            del self._tracks[track_id]
