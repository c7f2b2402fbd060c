"""Parking-slot occupancy with debouncing, and occupancy intervals per slot.

Which slots are occupied on a frame is decided by an :class:`~pipeline.analytics.occupancy.OccupancyRule`
on that frame's detections alone (no track has to be confirmed first). The slot's reported state
changes only after the new state has held for ``debounce_s`` seconds of frame time (timestamps may be
irregular, as with snapshots), so a car driving past does not flicker it; the change is dated to when
it began.

Example:
    >>> import numpy as np
    >>> parking = ParkingMonitor({"A1": [(0, 0), (40, 0), (40, 20), (0, 20)]}, min_overlap=0.5, debounce_s=1.0)
    >>> car = sv.Detections(xyxy=np.array([[0.0, 0.0, 40.0, 20.0]]), confidence=np.array([0.8]))
    >>> [e.to_record()["event"] for t in range(12) for e in parking.update(car, t, t / 10)]
    ['slot_occupied']
    >>> parking.occupied_count
    1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import supervision as sv

from pipeline.analytics.events import SlotChange
from pipeline.analytics.occupancy import OccupancyRule
from pipeline.config import ModelConfig, ParkingConfig
from pipeline.geometry import Point


@dataclass
class _Slot:
    name: str
    polygon: np.ndarray
    occupied: bool = False
    change_since: tuple[int, float] | None = None
    """(frame_index, timestamp_s) since when the raw state has differed from ``occupied``."""
    interval_start: tuple[int, float] | None = None
    intervals: list[dict[str, Any]] = field(default_factory=list)
    occupied_s: float = 0.0

    def close_interval(self, end: tuple[int, float], ongoing: bool) -> None:
        """End the occupancy interval that is open, at ``end`` (frame_index, timestamp_s)."""
        assert self.interval_start is not None
        (start_frame, start_s), (end_frame, end_s) = self.interval_start, end
        self.intervals.append(
            {
                "slot": self.name,
                "start_frame": start_frame,
                "start_s": round(start_s, 4),
                "end_frame": end_frame,
                "end_s": round(end_s, 4),
                "duration_s": round(end_s - start_s, 4),
                "ongoing": ongoing,
            }
        )
        self.occupied_s += end_s - start_s
        self.interval_start = None


def model_for_parking(model: ModelConfig, parking: ParkingConfig, frame_size: tuple[int, int]) -> ModelConfig:
    """The model settings a run with parking slots detects with: the detector threshold no higher than
    ``parking.min_confidence`` and, with ``full_resolution``, an input no smaller than the frame.

    Example:
        >>> from pipeline.config import SlotConfig
        >>> parking = ParkingConfig(slots=[SlotConfig("A1", [(0, 0), (9, 0), (9, 9)])])
        >>> tuned = model_for_parking(ModelConfig(), parking, (1280, 720))
        >>> tuned.imgsz, tuned.conf
        (1280, 0.005)
        >>> model_for_parking(ModelConfig(), ParkingConfig(), (1280, 720)).imgsz  # no slots: unchanged
        640
    """
    if not parking.slots:
        return model
    imgsz = max(model.imgsz, *frame_size) if parking.full_resolution else model.imgsz
    return replace(model, imgsz=imgsz, conf=min(model.conf, parking.min_confidence))


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
        min_overlap: Score a vehicle needs in its slot (see :class:`OccupancyRule`).
        debounce_s: How long a new state must hold before it is reported.
        rule: Occupancy rule, one of :data:`pipeline.analytics.occupancy.RULES`.
        min_confidence: Detections below this confidence do not occupy a slot.
        footprint_fraction: Lower share of a vehicle's box taken as its footprint (``footprint`` rule).
        min_box_to_bay_area: A box below this share of a slot's area cannot occupy that slot.

    Attributes:
        occupied_count: Slots occupied (debounced) after the last frame.
    """

    def __init__(
        self,
        slots: Mapping[str, Sequence[Point]],
        min_overlap: float = 0.5,
        debounce_s: float = 2.0,
        rule: str = "center",
        min_confidence: float = 0.005,
        footprint_fraction: float = 0.5,
        min_box_to_bay_area: float = 0.3,
    ) -> None:
        self.debounce_s = debounce_s
        self.rule = OccupancyRule(slots, rule, min_overlap, min_confidence, footprint_fraction, min_box_to_bay_area)
        self._slots = [_Slot(name, np.asarray(polygon, dtype=float)) for name, polygon in slots.items()]
        self._last: tuple[int, float] = (0, 0.0)
        self._first_s: float | None = None

    def rescale(self, sx: float, sy: float) -> None:
        """Follow a change of the source's resolution; slot states, intervals and times are kept."""
        for slot in self._slots:
            slot.polygon = slot.polygon * (sx, sy)
        rule = self.rule
        self.rule = OccupancyRule(
            self.polygons,
            rule.rule,
            rule.min_overlap,
            rule.min_confidence,
            rule.footprint_fraction,
            rule.min_box_to_bay_area,
        )

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

    def update(self, detections: sv.Detections, frame_index: int, timestamp_s: float) -> list[SlotChange]:
        """Add one frame of (vehicle) detections, tracked or not; returns the debounced state changes."""
        if self._first_s is None:
            self._first_s = timestamp_s
            for slot in self._slots:  # occupied since an earlier run (see resume): its interval starts here
                if slot.occupied:
                    slot.interval_start = (frame_index, timestamp_s)
        self._last = (frame_index, timestamp_s)
        events = []
        for slot, raw in zip(self._slots, self.rule.occupied(detections).values(), strict=True):
            if raw == slot.occupied:
                slot.change_since = None
                continue
            if slot.change_since is None:
                slot.change_since = (frame_index, timestamp_s)
            if timestamp_s - slot.change_since[1] >= self.debounce_s:
                events.append(self._change(slot, raw, slot.change_since))
        return events

    def resume(self, occupied: Mapping[str, bool]) -> None:
        """Start from the slots' states an earlier run left (before the first frame): a car still
        parked there is no new ``slot_occupied``."""
        for slot in self._slots:
            slot.occupied = occupied.get(slot.name, slot.occupied)

    def _change(self, slot: _Slot, occupied: bool, since: tuple[int, float]) -> SlotChange:
        slot.occupied, slot.change_since = occupied, None
        if occupied:
            slot.interval_start = since
        else:
            slot.close_interval(since, ongoing=False)
        return SlotChange(since[0], since[1], slot.name, occupied)

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
                slot.close_interval((self._last[0], end_s), ongoing=True)
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
