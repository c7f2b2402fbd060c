"""Which parking bays the vehicles on one frame occupy: a scoring rule plus one-to-one matching.

Rules (:data:`RULES`): ``center``, a vehicle is in the bay holding its box centre; ``footprint``, the
share of the lower part of its box (or mask), where a car seen at an angle meets the ground, inside
the bay; ``coverage``, the share of the bay its box (mask) covers. Each vehicle then goes to at most
one bay and each bay gets at most one vehicle (Hungarian matching on the scores), so a car
straddling two bays fills one of them, not both, and stray boxes on an occupied bay add nothing.
Whatever the rule, a box smaller than ``min_box_to_bay_area`` of a bay cannot occupy it: at the low
confidences parking needs, the detector also boxes stains, people and parts of cars.

Example:
    >>> import numpy as np
    >>> bays = {"A1": [(0, 0), (40, 0), (40, 20), (0, 20)], "A2": [(40, 0), (80, 0), (80, 20), (40, 20)]}
    >>> rule = OccupancyRule(bays, rule="footprint")
    >>> cars = sv.Detections(xyxy=np.array([[10.0, -20.0, 50.0, 20.0]]), confidence=np.array([0.9]))
    >>> rule.occupied(cars)
    {'A1': True, 'A2': False}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

import cv2
import numpy as np
import supervision as sv
from scipy.optimize import linear_sum_assignment

from pipeline.config.geometry import SlotRule
from pipeline.geometry import Point

RULES: tuple[str, ...] = get_args(SlotRule)
"""center: 1 if the box centre is in the bay (as Ultralytics' ParkingManagement); footprint: share of the
box's (mask's) lower part inside the bay; coverage: share of the bay covered by the box (mask)."""


@dataclass
class _Bay:
    polygon: np.ndarray
    x0: int
    y0: int
    mask: np.ndarray
    """The bay's pixels inside its bounding box [y0:y0+h, x0:x0+w]."""
    integral: np.ndarray
    """Summed-area table of ``mask`` (one row and column of zeros first): a box's overlap in O(1)."""

    @classmethod
    def of(cls, polygon: Sequence[Point]) -> _Bay:
        points = np.asarray(polygon, dtype=float)
        x0, y0 = np.floor(points.min(axis=0)).astype(int)
        x1, y1 = np.ceil(points.max(axis=0)).astype(int)
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        cv2.fillPoly(mask, [np.round(points - (x0, y0)).astype(np.int32)], 1)
        return cls(points, int(x0), int(y0), mask.astype(bool), cv2.integral(mask).astype(np.int64))

    @property
    def area(self) -> int:
        return int(self.integral[-1, -1])

    def box_overlap(self, x1: float, y1: float, x2: float, y2: float) -> int:
        """Pixels of the bay inside the box (frame pixels)."""
        h, w = self.mask.shape
        bx0, bx1 = (int(np.clip(round(v) - self.x0, 0, w)) for v in (x1, x2))
        by0, by1 = (int(np.clip(round(v) - self.y0, 0, h)) for v in (y1, y2))
        if bx1 <= bx0 or by1 <= by0:
            return 0
        s = self.integral
        return int(s[by1, bx1] - s[by0, bx1] - s[by1, bx0] + s[by0, bx0])

    def mask_overlap(self, vehicle: np.ndarray) -> int:
        """Pixels of the bay inside a full-frame boolean mask."""
        h, w = self.mask.shape
        window = vehicle[max(self.y0, 0) : self.y0 + h, max(self.x0, 0) : self.x0 + w]
        window = window[: h - max(-self.y0, 0), : w - max(-self.x0, 0)]
        part = self.mask[max(-self.y0, 0) : max(-self.y0, 0) + window.shape[0]]
        part = part[:, max(-self.x0, 0) : max(-self.x0, 0) + window.shape[1]]
        return int((window & part).sum())


class OccupancyRule:
    """Decides, for one frame's vehicle detections, which bays are occupied.

    Args:
        slots: Bay name to polygon (pixels).
        rule: One of :data:`RULES`.
        min_overlap: Score a vehicle needs in its matched bay for the bay to count as occupied.
        min_confidence: Detections below this confidence are ignored.
        footprint_fraction: Lower share of the box (mask) taken as the vehicle's footprint.
        min_box_to_bay_area: A box whose area is below this share of a bay's cannot occupy that bay.
    """

    def __init__(
        self,
        slots: Mapping[str, Sequence[Point]],
        rule: str = "center",
        min_overlap: float = 0.5,
        min_confidence: float = 0.005,
        footprint_fraction: float = 0.5,
        min_box_to_bay_area: float = 0.3,
    ) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown occupancy rule {rule!r} (one of {', '.join(RULES)})")
        self.rule, self.min_overlap, self.min_confidence = rule, min_overlap, min_confidence
        self.footprint_fraction, self.min_box_to_bay_area = footprint_fraction, min_box_to_bay_area
        self.names = list(slots)
        self.bays = [_Bay.of(polygon) for polygon in slots.values()]

    def scores(self, detections: sv.Detections) -> np.ndarray:
        """Score of each kept vehicle (rows) in each bay (columns), 0..1."""
        keep = np.ones(len(detections), bool)
        if detections.confidence is not None:
            keep = detections.confidence >= self.min_confidence
        boxes = detections.xyxy[keep]
        masks = detections.mask[keep] if detections.mask is not None else None
        result = np.zeros((len(boxes), len(self.bays)))
        for row, (x1, y1, x2, y2) in enumerate(boxes):
            box_area = (x2 - x1) * (y2 - y1)
            if self.rule == "footprint":
                y1 = y2 - self.footprint_fraction * (y2 - y1)
            for column, bay in enumerate(self.bays):
                h, w = bay.mask.shape
                if x2 <= bay.x0 or y2 <= bay.y0 or x1 >= bay.x0 + w or y1 >= bay.y0 + h:
                    continue
                if box_area < self.min_box_to_bay_area * bay.area:
                    continue
                result[row, column] = self._score(bay, (x1, y1, x2, y2), None if masks is None else masks[row])
        return result

    def _score(self, bay: _Bay, box: tuple[float, float, float, float], mask: np.ndarray | None) -> float:
        x1, y1, x2, y2 = box
        if self.rule == "center":
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            return float(cv2.pointPolygonTest(bay.polygon.astype(np.float32), (cx, cy), False) >= 0)
        if mask is not None:
            if self.rule == "footprint":
                mask = mask.copy()
                mask[: max(round(y1), 0)] = False
            inside, total = bay.mask_overlap(mask), int(mask.sum())
        else:
            width_px, height_px = max(round(x2) - round(x1), 0), max(round(y2) - round(y1), 0)
            inside, total = bay.box_overlap(x1, y1, x2, y2), width_px * height_px
        denominator = total if self.rule == "footprint" else bay.area
        return inside / denominator if denominator else 0.0

    def occupied(self, detections: sv.Detections) -> dict[str, bool]:
        """Bay name to occupied on this frame (each vehicle in at most one bay, each bay one vehicle)."""
        scores = self.scores(detections)
        occupied = dict.fromkeys(self.names, False)
        if scores.size:
            rows, columns = linear_sum_assignment(scores, maximize=True)
            for row, column in zip(rows, columns, strict=True):
                if scores[row, column] >= self.min_overlap:
                    occupied[self.names[column]] = True
        return occupied
