"""Parking-slot occupancy with debouncing, and occupancy intervals per slot.

A slot is occupied on a frame when one vehicle covers at least ``min_overlap`` of the slot's area
(its mask when segmenting, else its box). The slot's reported state changes only after the new
state has held for ``debounce_s`` seconds, so a car driving past does not flicker it; the change is
dated to when it began.

Example:
    >>> import numpy as np
    >>> parking = ParkingMonitor({"A1": [(0, 0), (40, 0), (40, 20), (0, 20)]}, min_overlap=0.5, debounce_s=1.0)
    >>> car = sv.Detections(xyxy=np.array([[0.0, 0.0, 40.0, 20.0]]), tracker_id=np.array([1]))
    >>> [e.to_record()["event"] for t in range(12) for e in parking.update(car, t, t / 10)]
    ['slot_occupied']
    >>> parking.occupied_count
    1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import supervision as sv

from pipeline.analytics.events import SlotChange
from pipeline.geometry import Point


@dataclass
class _Slot:
    name: str
    polygon: np.ndarray
    x0: int
    y0: int
    mask: np.ndarray
    """The slot's pixels inside its bounding box [y0:y0+h, x0:x0+w]."""
    occupied: bool = False
    change_since: tuple[int, float] | None = None
    """(frame_index, timestamp_s) since when the raw state has differed from ``occupied``."""
    interval_start: tuple[int, float] | None = None
    intervals: list[dict[str, Any]] = field(default_factory=list)
    occupied_s: float = 0.0


def grid_slots(region: tuple[float, float, float, float], rows: int, columns: int) -> dict[str, list[Point]]:
    """Split a rectangle into ``rows`` x ``columns`` slots named A1, A2, ..., B1, ... (row letter, column number).

    Example:
        >>> grid_slots((0, 0, 200, 100), rows=1, columns=2)["A2"]
        [(100.0, 0.0), (200.0, 0.0), (200.0, 100.0), (100.0, 100.0)]
    """
    x1, y1, x2, y2 = (float(v) for v in region)
    width, height = (x2 - x1) / columns, (y2 - y1) / rows
    slots = {}
    for row in range(rows):
        for column in range(columns):
            left, top = x1 + column * width, y1 + row * height
            name = f"{chr(ord('A') + row % 26)}{'' if row < 26 else row // 26}{column + 1}"
            slots[name] = [(left, top), (left + width, top), (left + width, top + height), (left, top + height)]
    return slots


class ParkingMonitor:
    """Tracks which parking slots are occupied.

    Args:
        slots: Slot name to polygon (pixels).
        min_overlap: Fraction of a slot one vehicle must cover for it to count as occupied.
        debounce_s: How long a new state must hold before it is reported.

    Attributes:
        occupied_count: Slots occupied (debounced) after the last frame.
    """

    def __init__(self, slots: Mapping[str, Sequence[Point]], min_overlap: float = 0.5, debounce_s: float = 2.0) -> None:
        self.min_overlap = min_overlap
        self.debounce_s = debounce_s
        self._slots = [self._make_slot(name, polygon) for name, polygon in slots.items()]
        self._last: tuple[int, float] = (0, 0.0)
        self._first_s: float | None = None

    @staticmethod
    def _make_slot(name: str, polygon: Sequence[Point]) -> _Slot:
        points = np.asarray(polygon, dtype=float)
        x0, y0 = np.floor(points.min(axis=0)).astype(int)
        x1, y1 = np.ceil(points.max(axis=0)).astype(int)
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        cv2.fillPoly(mask, [np.round(points - (x0, y0)).astype(np.int32)], 1)
        return _Slot(name, points, int(x0), int(y0), mask.astype(bool))

    def rescale(self, sx: float, sy: float) -> None:
        """Follow a change of the source's resolution; slot states, intervals and times are kept."""
        for index, slot in enumerate(self._slots):
            fresh = self._make_slot(slot.name, [(x * sx, y * sy) for x, y in slot.polygon])
            slot.polygon, slot.x0, slot.y0, slot.mask = fresh.polygon, fresh.x0, fresh.y0, fresh.mask
            self._slots[index] = slot

    @property
    def slot_names(self) -> list[str]:
        return [slot.name for slot in self._slots]

    @property
    def polygons(self) -> dict[str, np.ndarray]:
        return {slot.name: slot.polygon for slot in self._slots}

    @property
    def occupied(self) -> dict[str, bool]:
        """Debounced state per slot."""
        return {slot.name: slot.occupied for slot in self._slots}

    @property
    def occupied_count(self) -> int:
        return sum(slot.occupied for slot in self._slots)

    @property
    def free_count(self) -> int:
        return len(self._slots) - self.occupied_count

    def coverage(self, detections: sv.Detections) -> dict[str, float]:
        """Largest fraction of each slot covered by a single vehicle on this frame."""
        result = {}
        for slot in self._slots:
            h, w = slot.mask.shape
            area = slot.mask.sum()
            best = 0.0
            for index in range(len(detections)):
                x1, y1, x2, y2 = detections.xyxy[index]
                if x2 <= slot.x0 or y2 <= slot.y0 or x1 >= slot.x0 + w or y1 >= slot.y0 + h:
                    continue
                if detections.mask is not None:
                    vehicle = detections.mask[index, slot.y0 : slot.y0 + h, slot.x0 : slot.x0 + w]
                    vehicle = np.pad(vehicle, ((0, h - vehicle.shape[0]), (0, w - vehicle.shape[1])))
                else:
                    vehicle = np.zeros((h, w), bool)
                    bx0, by0 = max(0, round(x1) - slot.x0), max(0, round(y1) - slot.y0)
                    bx1, by1 = max(0, round(x2) - slot.x0), max(0, round(y2) - slot.y0)
                    vehicle[by0:by1, bx0:bx1] = True
                best = max(best, float((vehicle & slot.mask).sum() / area))
            result[slot.name] = best
        return result

    def update(self, detections: sv.Detections, frame_index: int, timestamp_s: float) -> list[SlotChange]:
        """Add one frame of (vehicle) detections; returns the debounced state changes."""
        if self._first_s is None:
            self._first_s = timestamp_s
        self._last = (frame_index, timestamp_s)
        events = []
        for slot, fraction in zip(self._slots, self.coverage(detections).values(), strict=True):
            raw = fraction >= self.min_overlap
            if raw == slot.occupied:
                slot.change_since = None
                continue
            if slot.change_since is None:
                slot.change_since = (frame_index, timestamp_s)
            if timestamp_s - slot.change_since[1] >= self.debounce_s:
                events.append(self._change(slot, raw, slot.change_since))
        return events

    def _change(self, slot: _Slot, occupied: bool, since: tuple[int, float]) -> SlotChange:
        slot.occupied, slot.change_since = occupied, None
        if occupied:
            slot.interval_start = since
        else:
            self._close_interval(slot, since, ongoing=False)
        return SlotChange(since[0], since[1], slot.name, occupied)

    def _close_interval(self, slot: _Slot, end: tuple[int, float], ongoing: bool) -> None:
        assert slot.interval_start is not None
        (start_frame, start_s), (end_frame, end_s) = slot.interval_start, end
        slot.intervals.append(
            {
                "slot": slot.name,
                "start_frame": start_frame,
                "start_s": round(start_s, 4),
                "end_frame": end_frame,
                "end_s": round(end_s, 4),
                "duration_s": round(end_s - start_s, 4),
                "ongoing": ongoing,
            }
        )
        slot.occupied_s += end_s - start_s
        slot.interval_start = None

    def pop_intervals(self) -> list[dict[str, Any]]:
        """Finished occupancy intervals since the last call (for ``parking.jsonl``)."""
        finished = [interval for slot in self._slots for interval in slot.intervals]
        for slot in self._slots:
            slot.intervals.clear()
        return finished

    def finish(self, end_s: float) -> list[dict[str, Any]]:
        """Close the intervals still open at the end of the run (marked ``ongoing``) and return them."""
        for slot in self._slots:
            if slot.occupied and slot.interval_start is not None:
                self._close_interval(slot, (self._last[0], end_s), ongoing=True)
        return self.pop_intervals()

    def summary(self, end_s: float) -> dict[str, Any]:
        """Utilisation (occupied share of the run) and occupied seconds per slot."""
        total = max(end_s - (self._first_s or 0.0), 1e-9)
        return {
            "slots": {
                slot.name: {"occupied_s": round(slot.occupied_s, 3), "utilisation": round(slot.occupied_s / total, 4)}
                for slot in self._slots
            },
            "occupied_at_end": self.occupied_count,
            "free_at_end": self.free_count,
        }
