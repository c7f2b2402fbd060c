"""Polygon zones: occupancy per class on each frame, enter/exit events and dwell time per track.

A track that vanishes inside the zone (occlusion, a missed detection) and is found again inside
within ``lost_grace_s`` keeps its dwell time running; one that does not come back is closed as
leaving at its last sighting.

Example:
    >>> import numpy as np
    >>> zone = ZoneCounter("box", [(0, 0), (100, 0), (100, 100), (0, 100)])
    >>> detections = sv.Detections(
    ...     xyxy=np.array([[10.0, 10.0, 30.0, 50.0], [150.0, 10.0, 170.0, 50.0]]),
    ...     class_id=np.array([2, 2]), tracker_id=np.array([1, 2]), data={"class_name": np.array(["car", "car"])})
    >>> [event.event_type for event in zone.update(detections, 0, 0.0)]
    ['zone_enter']
    >>> zone.count_by_class
    Counter({'car': 1})
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import supervision as sv

from pipeline.analytics.events import Event, ZoneEnter, ZoneExit
from pipeline.analytics.lines import tracked_anchors


@dataclass
class _Visit:
    entered_s: float
    class_name: str
    last_inside_s: float
    last_inside_frame: int


class ZoneCounter:
    """Counts tracked objects whose anchor (bottom centre of the box) lies inside a polygon.

    Args:
        name: The zone's name, used in outputs.
        polygon: Vertices in pixels.
        lost_grace_s: How long a track may vanish inside the zone and still continue its visit
            (the tracker's buffer).

    Attributes:
        count: Objects inside on the last frame.
        count_by_class: The same, per class name.
        max_count: Largest ``count`` seen so far.
        enters: Number of ``zone_enter`` events.
        dwell_times_s: Number, sum and maximum of the finished visits' dwell times.
    """

    def __init__(self, name: str, polygon: list[tuple[float, float]], lost_grace_s: float = 1.0) -> None:
        self.name = name
        self.polygon = np.asarray(polygon, dtype=float)
        self.lost_grace_s = lost_grace_s
        self._zone = sv.PolygonZone(self.polygon.round().astype(int), triggering_anchors=(sv.Position.BOTTOM_CENTER,))
        self.count = 0
        self.count_by_class: Counter[str] = Counter()
        self.max_count = 0
        self.enters = 0
        self.exits = 0
        self.dwell_sum_s = 0.0
        self.dwell_max_s = 0.0
        self._count_sum = 0
        self._frames = 0
        self._visits: dict[int, _Visit] = {}

    @property
    def mean_count(self) -> float:
        """Average ``count`` over the frames seen so far."""
        return self._count_sum / self._frames if self._frames else 0.0

    @property
    def mean_dwell_s(self) -> float:
        return self.dwell_sum_s / self.exits if self.exits else 0.0

    @property
    def tracks_held(self) -> int:
        """Visits in progress (bounded: vanished tracks are closed after ``lost_grace_s``)."""
        return len(self._visits)

    def rescale(self, sx: float, sy: float) -> None:
        """Follow a change of the source's resolution; visits and statistics are kept."""
        self.polygon = self.polygon * (sx, sy)
        self._zone = sv.PolygonZone(self.polygon.round().astype(int), triggering_anchors=(sv.Position.BOTTOM_CENTER,))

    def dwell_so_far(self, now_s: float) -> dict[int, float]:
        """Tracks inside (or briefly lost inside) and their dwell time up to ``now_s``."""
        return {track_id: round(now_s - visit.entered_s, 4) for track_id, visit in self._visits.items()}

    def update(self, detections: sv.Detections, frame_index: int, timestamp_s: float) -> list[Event]:
        """Count one frame's tracked detections inside the zone; returns enter/exit events."""
        tracked = tracked_anchors(detections)
        inside = self._zone.trigger(detections) if tracked else np.zeros(0, bool)
        events: list[Event] = []
        seen: set[int] = set()
        self.count_by_class = Counter()
        for (track_id, _, class_name), is_inside in zip(tracked, inside, strict=True):
            seen.add(track_id)
            visit = self._visits.get(track_id)
            if is_inside:
                self.count_by_class[class_name] += 1
                if visit is None:
                    self._visits[track_id] = _Visit(timestamp_s, class_name, timestamp_s, frame_index)
                    events.append(
                        ZoneEnter(frame_index, timestamp_s, self.name, track_id=track_id, class_name=class_name)
                    )
                    self.record(events[-1])
                else:
                    visit.last_inside_s, visit.last_inside_frame = timestamp_s, frame_index
                    visit.class_name = class_name
            elif visit is not None:
                events.append(self._close(track_id, frame_index, timestamp_s))
        gone = [
            t for t, v in self._visits.items() if t not in seen and timestamp_s - v.last_inside_s > self.lost_grace_s
        ]
        for track_id in gone:
            visit = self._visits[track_id]
            events.append(self._close(track_id, visit.last_inside_frame, visit.last_inside_s))
        self.count = sum(self.count_by_class.values())
        self.max_count = max(self.max_count, self.count)
        self._count_sum += self.count
        self._frames += 1
        return events

    def _close(self, track_id: int, frame_index: int, timestamp_s: float) -> ZoneExit:
        visit = self._visits.pop(track_id)
        event = ZoneExit(
            frame_index,
            timestamp_s,
            self.name,
            timestamp_s - visit.entered_s,
            track_id=track_id,
            class_name=visit.class_name,
        )
        self.record(event)
        return event

    def record(self, event: ZoneEnter | ZoneExit) -> None:
        """Add ``event`` to the visits' statistics (one this counter found, or an earlier run's)."""
        if isinstance(event, ZoneEnter):
            self.enters += 1
            return
        self.exits += 1
        self.dwell_sum_s += event.dwell_s
        self.dwell_max_s = max(self.dwell_max_s, event.dwell_s)
