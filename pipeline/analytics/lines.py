"""Line crossing counts: pure geometry and per-track state, no drawing, no I/O.

A crossing is the anchor's motion segment (previous position to current position) intersecting the
line segment, so an object that jumps over the line between two frames still counts and one that
passes beside the segment's end does not. Each track counts at most once per line and direction.

Example:
    >>> import numpy as np
    >>> counter = LineCounter("main", start=(0, 100), end=(200, 100))
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

from collections import Counter
from dataclasses import dataclass, field

import supervision as sv

from pipeline.analytics.events import Direction, LineCrossing

Point = tuple[float, float]


def _cross(origin: Point, a: Point, b: Point) -> float:
    """z of (a - origin) x (b - origin): > 0 when b is on the positive side of origin->a."""
    return (a[0] - origin[0]) * (b[1] - origin[1]) - (a[1] - origin[1]) * (b[0] - origin[0])


def class_names_of(detections: sv.Detections) -> list[str]:
    """Class names per detection, falling back to the class id as text."""
    if "class_name" in detections.data:
        return [str(name) for name in detections.data["class_name"]]
    if detections.class_id is not None:
        return [str(class_id) for class_id in detections.class_id]
    return ["object"] * len(detections)


@dataclass
class _TrackState:
    point: Point
    """Last anchor position that was strictly off the line."""
    last_seen_s: float
    counted: set[Direction] = field(default_factory=set)


class LineCounter:
    """Counts tracks crossing a directed line segment, per class and direction.

    Args:
        name: The line's name, used in events and outputs.
        start: First end point in pixels.
        end: Second end point. Moving from the negative to the positive side of
            cross(end - start, anchor - start) is ``in``: for a line drawn left to right, moving down.
        forget_after_s: Drop a track's state once it has not been seen for this long, so memory
            stays bounded on endless feeds. Set it at least as long as the tracker's buffer.
        anchor: Which point of the box represents the object.

    Attributes:
        crossings_in: Count of ``in`` crossings per class name.
        crossings_out: Count of ``out`` crossings per class name.
    """

    def __init__(
        self,
        name: str,
        start: Point,
        end: Point,
        forget_after_s: float = 5.0,
        anchor: sv.Position = sv.Position.BOTTOM_CENTER,
    ) -> None:
        self.name = name
        self.start = (float(start[0]), float(start[1]))
        self.end = (float(end[0]), float(end[1]))
        self.forget_after_s = forget_after_s
        self.anchor = anchor
        self.crossings_in: Counter[str] = Counter()
        self.crossings_out: Counter[str] = Counter()
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

    def _segment_hits_line(self, p0: Point, p1: Point) -> bool:
        """Whether the motion p0 -> p1, which changes side, passes through the segment (ends included)."""
        return _cross(p0, p1, self.start) * _cross(p0, p1, self.end) <= 0

    def update(self, detections: sv.Detections, frame_index: int, timestamp_s: float) -> list[LineCrossing]:
        """Advance by one frame of tracked detections; returns the crossings on this frame.

        Detections without a ``tracker_id`` are ignored: an untracked box cannot cross anything.
        """
        events: list[LineCrossing] = []
        if detections.tracker_id is not None and len(detections):
            anchors = detections.get_anchors_coordinates(self.anchor)
            for track_id, anchor, class_name in zip(
                detections.tracker_id, anchors, class_names_of(detections), strict=True
            ):
                event = self._update_track(int(track_id), (float(anchor[0]), float(anchor[1])), class_name)
                if event is not None:
                    events.append(LineCrossing(frame_index, timestamp_s, self.name, event, int(track_id), class_name))
                state = self._tracks.get(int(track_id))
                if state is not None:
                    state.last_seen_s = timestamp_s
        self._forget_stale(timestamp_s)
        return events

    def _update_track(self, track_id: int, point: Point, class_name: str) -> Direction | None:
        side = self.side(point)
        state = self._tracks.get(track_id)
        if side == 0:  # on the line: wait until it leaves to know where it went
            return None
        if state is None:
            self._tracks[track_id] = _TrackState(point, last_seen_s=0.0)
            return None
        previous_side = self.side(state.point)
        previous_point, state.point = state.point, point
        if (previous_side < 0) == (side < 0) or not self._segment_hits_line(previous_point, point):
            return None
        direction: Direction = "in" if side > 0 else "out"
        if direction in state.counted:
            return None
        state.counted.add(direction)
        (self.crossings_in if direction == "in" else self.crossings_out)[class_name] += 1
        return direction

    def _forget_stale(self, now_s: float) -> None:
        stale = [tid for tid, state in self._tracks.items() if now_s - state.last_seen_s > self.forget_after_s]
        for track_id in stale:
            del self._tracks[track_id]
