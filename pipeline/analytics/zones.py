"""Polygon zone occupancy: how many tracked objects are inside, per class, on each frame.

Example:
    >>> zone = ZoneCounter("box", [(0, 0), (100, 0), (100, 100), (0, 100)])
    >>> detections = sv.Detections(
    ...     xyxy=np.array([[10.0, 10.0, 30.0, 50.0], [150.0, 10.0, 170.0, 50.0]]),
    ...     class_id=np.array([2, 2]), tracker_id=np.array([1, 2]), data={"class_name": np.array(["car", "car"])})
    >>> zone.update(detections)
    1
    >>> zone.count_by_class
    Counter({'car': 1})
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import supervision as sv

from pipeline.analytics.lines import class_names_of


class ZoneCounter:
    """Counts tracked objects whose anchor (bottom centre of the box) lies inside a polygon.

    Args:
        name: The zone's name, used in outputs.
        polygon: Vertices in pixels.

    Attributes:
        count: Objects inside on the last frame.
        count_by_class: The same, per class name.
        max_count: Largest ``count`` seen so far.
    """

    def __init__(self, name: str, polygon: list[tuple[float, float]]) -> None:
        self.name = name
        self.polygon = np.asarray(polygon, dtype=float)
        self._zone = sv.PolygonZone(self.polygon.round().astype(int), triggering_anchors=(sv.Position.BOTTOM_CENTER,))
        self.count = 0
        self.count_by_class: Counter[str] = Counter()
        self.max_count = 0
        self._count_sum = 0
        self._frames = 0

    @property
    def mean_count(self) -> float:
        """Average ``count`` over the frames seen so far."""
        return self._count_sum / self._frames if self._frames else 0.0

    def update(self, detections: sv.Detections) -> int:
        """Count one frame's tracked detections inside the zone; returns the count."""
        if detections.tracker_id is not None and len(detections):
            inside = self._zone.trigger(detections)
            names = np.asarray(class_names_of(detections))
            self.count_by_class = Counter(names[inside].tolist())
        else:
            self.count_by_class = Counter()
        self.count = sum(self.count_by_class.values())
        self.max_count = max(self.max_count, self.count)
        self._count_sum += self.count
        self._frames += 1
        return self.count
