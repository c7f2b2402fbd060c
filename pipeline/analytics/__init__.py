"""The analytics stage: line crossings, zones and dwell time, parking occupancy, speed.

Pure geometry and per-track state (no drawing, no I/O), so every rule is tested exactly on
synthetic tracks. :class:`Analytics` runs all configured counters on each frame, and
:class:`Counts` holds what they counted for ``summary.json`` (a batch slice's own
:class:`~pipeline.analytics.tally.SliceTally` gives one too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import supervision as sv

from pipeline.analytics.approaches import Approach
from pipeline.analytics.class_groups import ClassGroups
from pipeline.analytics.crosswalks import CrosswalkCounter
from pipeline.analytics.events import (
    CrosswalkCrossing,
    Event,
    LineCrossing,
    Movement,
    SlotChange,
    TrackEvent,
    ZoneEnter,
    ZoneExit,
)
from pipeline.analytics.lines import Lane, LineCounter
from pipeline.analytics.movements import MovementCounter
from pipeline.analytics.parking import ParkingMonitor
from pipeline.analytics.speed import SpeedEstimator
from pipeline.analytics.views import AnalyticsView, MovementsView, movements_snapshot, snapshot
from pipeline.analytics.zones import ZoneCounter
from pipeline.config import Config, LineConfig, MovementsConfig, ParkingConfig, SpeedConfig, ZoneConfig
from pipeline.config.columns import (
    PARKING_COLUMNS,
    Column,
    counts_columns,
    crosswalk_columns,
    line_columns,
    movement_name,
    zone_column,
)

__all__ = [
    "Analytics",
    "AnalyticsView",
    "Counts",
    "Event",
    "LineCounter",
    "LineCrossing",
    "Movement",
    "MovementCounter",
    "ParkingMonitor",
    "SlotChange",
    "SpeedEstimator",
    "TrackEvent",
    "ZoneCounter",
    "ZoneEnter",
    "ZoneExit",
]


@dataclass
class Counts:
    """The counting sections of ``summary.json``: per line, per zone, and (when configured) the
    movements and parking; dicts shaped as ``docs/outputs.md`` describes.

    Example:
        >>> Counts({"main": {"in": {}, "out": {}, "in_total": 0, "out_total": 0}}, {}).to_json()["zones"]
        {}
    """

    lines: dict[str, Any]
    zones: dict[str, Any]
    movements: dict[str, Any] | None = None
    parking: dict[str, Any] | None = None
    crosswalks: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The sections, in the file's order (``movements``, ``parking`` and ``crosswalks`` only when
        configured)."""
        sections: dict[str, Any] = {"lines": self.lines, "zones": self.zones}
        if self.movements is not None:
            sections["movements"] = self.movements
        if self.parking is not None:
            sections["parking"] = self.parking
        if self.crosswalks is not None:
            sections["crosswalks"] = self.crosswalks
        return sections

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Counts:
        """The sections of a summary (other keys are ignored)."""
        return cls(data["lines"], data["zones"], data.get("movements"), data.get("parking"), data.get("crosswalks"))


class Analytics:
    """All of a run's counters, updated together once per frame.

    Args:
        lines: Counting lines from the config.
        zones: Polygon zones from the config.
        forget_after_s: How long a vanished track's state is kept (at least the tracker's buffer).
        parking: Parking slots and their rules; no slots, no parking monitor.
        speed: Speed calibration; without points, no speeds.
        movements: Approaches for turning movements (fewer than two, no movement counter) and crosswalks.
        class_groups: The groups events and summaries name beside each class (default: the default groups);
            pedestrians are counted on crosswalks only, never in movements.

    Example:
        >>> analytics = Analytics([LineConfig("main", (0, 100), (200, 100))], [], forget_after_s=2.0)
        >>> analytics.row()
        {'main_in': 0, 'main_out': 0}
    """

    def __init__(
        self,
        lines: Sequence[LineConfig],
        zones: Sequence[ZoneConfig],
        forget_after_s: float,
        parking: ParkingConfig | None = None,
        speed: SpeedConfig | None = None,
        movements: MovementsConfig | None = None,
        class_groups: ClassGroups | None = None,
    ) -> None:
        self.lines = [_line_counter(line, forget_after_s) for line in lines]
        self.zones = [ZoneCounter(zone.name, zone.polygon, lost_grace_s=forget_after_s) for zone in zones]
        self.parking = _parking_monitor(parking) if parking is not None and parking.slots else None
        self.speed = _speed_estimator(speed, forget_after_s) if speed is not None else None
        self.movements = _movement_counter(movements, forget_after_s) if movements is not None else None
        self.crosswalks = [
            CrosswalkCounter(c.name, c.line, c.polygon, movements.min_crossing_distance, forget_after_s)
            for c in (movements.crosswalks if movements is not None else [])
        ]
        self.groups = class_groups or ClassGroups.of_config()
        self.line_speeds = LineSpeeds()

    @classmethod
    def for_run(cls, config: Config) -> Analytics:
        """Every counter ``config`` asks for (geometry already in the source's pixels), as a run has them."""
        # Keep a vanished track's counting state a little longer than ByteTrack can revive it.
        forget_after_s = config.tracker.track_buffer_s + 1.0
        groups = ClassGroups.of_config(config.class_groups)
        return cls(config.lines, config.zones, forget_after_s, config.parking, config.speed, config.movements, groups)

    def update(
        self, detections: sv.Detections, frame_index: int, timestamp_s: float, raw: sv.Detections | None = None
    ) -> list[Event]:
        """Update every counter with one frame; returns the frame's events.

        ``detections`` are the tracked ones; parking judges the frame's own ``raw`` detections when given
        (a car seen on one snapshot, or too faint to start a track, still occupies its slot)."""
        speeds = self.speed.update(detections, timestamp_s) if self.speed is not None else {}
        events: list[Event] = [e for line in self.lines for e in line.update(detections, frame_index, timestamp_s)]
        events += [e for zone in self.zones for e in zone.update(detections, frame_index, timestamp_s)]
        if self.movements is not None or self.crosswalks:
            pedestrians = self.groups.pedestrians(detections)
            if self.movements is not None:
                events += self.movements.update(detections[~pedestrians], frame_index, timestamp_s)
            for crosswalk in self.crosswalks:
                events += crosswalk.update(detections[pedestrians], frame_index, timestamp_s)
        events = [self.groups.tag(event) for event in events]
        if speeds:
            events = [self.line_speeds.attach(e, speeds) if isinstance(e, TrackEvent) else e for e in events]
        if self.parking is not None:
            events += self.parking.update(raw if raw is not None else detections, frame_index, timestamp_s)
        return events

    def resume(self, events: Iterable[Event]) -> None:
        """Carry on from an earlier run's events, before the first frame: its line crossings (and
        their speeds), movements and zone visits are counted as this run's, and its parking slots
        start in the state it left them in."""
        lines = {line.name: line for line in self.lines}
        zones = {zone.name: zone for zone in self.zones}
        crosswalks = {crosswalk.name: crosswalk for crosswalk in self.crosswalks}
        slots: dict[str, bool] = {}
        for event in events:
            match event:
                case LineCrossing(line=name) if name in lines:
                    lines[name].record(event)
                    if event.speed_kmh is not None:
                        self.line_speeds.add(name, event.direction, event.speed_kmh)
                case ZoneEnter(zone=name) | ZoneExit(zone=name) if name in zones:
                    zones[name].record(event)
                case Movement() if self.movements is not None:
                    self.movements.record(event)
                case CrosswalkCrossing(crosswalk=name) if name in crosswalks:
                    crosswalks[name].record(event)
                case SlotChange():
                    slots[event.slot] = event.occupied
        if self.parking is not None:
            self.parking.resume(slots)

    def rescale(self, sx: float, sy: float) -> None:
        """Follow a change of the source's resolution by (sx, sy); every count and state is kept."""
        for counter in [*self.lines, *self.zones, *self.crosswalks, self.parking, self.speed, self.movements]:
            if counter is not None:
                counter.rescale(sx, sy)

    def view(self) -> AnalyticsView:
        """A frozen snapshot of what the overlays draw, safe to hand to another thread."""
        return snapshot(self.lines, self.zones, self.parking, self.movements, self.crosswalks)

    def movements_view(self) -> MovementsView | None:
        """The approaches, the counts between them and the crosswalks, for the origin-destination overlay."""
        return movements_snapshot(self.movements, self.crosswalks)

    @property
    def column_kinds(self) -> dict[str, Column]:
        """The analytics columns of ``counts.csv`` and what each counts, per line, zone, movement (every pair of
        approaches), crosswalk and the parking bays (:func:`~pipeline.config.columns.counts_columns`)."""
        movements = [movement_name(*pair) for pair in self.movements.pairs] if self.movements is not None else []
        crosswalks = [(crosswalk.name, crosswalk.polygon is None) for crosswalk in self.crosswalks]
        lines, zones = [line.name for line in self.lines], [zone.name for zone in self.zones]
        return counts_columns(lines, zones, movements, crosswalks, parking=self.parking is not None)

    @property
    def columns(self) -> list[str]:
        """The analytics columns of ``counts.csv``, in order (see :attr:`column_kinds`)."""
        return list(self.column_kinds)

    @property
    def level_columns(self) -> list[str]:
        """The columns of :attr:`columns` that are levels (objects per zone, parking bays), not cumulative counts."""
        return [column for column, kind in self.column_kinds.items() if kind.kind in ("zone", "parking")]

    def row(self) -> dict[str, int]:
        """The current values of :attr:`columns` (line counts are cumulative, all classes)."""
        row = {}
        for line in self.lines:
            row.update(zip(line_columns(line.name), (line.in_total, line.out_total), strict=True))
        row.update({zone_column(zone.name): zone.count for zone in self.zones})
        if self.movements is not None:
            row.update({movement_name(*pair): self.movements.total(*pair) for pair in self.movements.pairs})
        for crosswalk in self.crosswalks:  # pedestrians per polygon, per direction across a line
            is_line = crosswalk.polygon is None
            counts = [crosswalk.counts[d] for d in (("in", "out") if is_line else (None,))]
            row.update(zip(crosswalk_columns(crosswalk.name, is_line), counts, strict=True))
        if self.parking is not None:
            row.update(zip(PARKING_COLUMNS, (self.parking.occupied_count, self.parking.free_count), strict=True))
        return row

    def zone_counts(self) -> dict[str, int]:
        """Objects inside each zone on the last frame."""
        return {zone.name: zone.count for zone in self.zones}

    @property
    def tracks_held(self) -> int:
        """Per-track states held by all counters (bounded by pruning)."""
        counters = [*self.lines, *self.zones, *self.crosswalks, self.movements, self.speed]
        return sum(counter.tracks_held for counter in counters if counter is not None)

    def summary(self, end_s: float) -> Counts:
        """The counting sections of ``summary.json``; ``end_s`` is the end of the processed video."""
        speeds = self.line_speeds if self.speed is not None else None
        return Counts(
            lines={line.name: _line_summary(line, speeds, self.groups) for line in self.lines},
            zones={zone.name: _zone_summary(zone, end_s) for zone in self.zones},
            movements=self.movements.summary(self.groups) if self.movements is not None else None,
            parking=self.parking.summary(end_s) if self.parking is not None else None,
            crosswalks={c.name: crosswalk_summary(c.counts, c.polygon is None) for c in self.crosswalks}
            if self.crosswalks
            else None,
        )

    def inside_at_end(self, end_s: float) -> dict[str, dict[str, float]]:
        """Per zone, the tracks inside it at ``end_s`` and how long they have been (``inside_at_end``)."""
        return {zone.name: _inside_at_end(zone, end_s) for zone in self.zones}


class LineSpeeds:
    """Mean crossing speed per (line, direction), as a running sum: constant memory however long the run.

    Example:
        >>> speeds = LineSpeeds()
        >>> speeds.add("main", "in", 50.0); speeds.add("main", "in", 70.0)
        >>> speeds.mean_kmh("main")
        {'in': 60.0, 'out': None}
    """

    def __init__(self) -> None:
        self._sums: dict[tuple[str, str], tuple[float, int]] = {}

    def attach(self, event: TrackEvent, speeds: dict[int, float | None]) -> TrackEvent:
        """``event`` with its track's speed (crossings also enter the line's mean), if it has one."""
        speed_kmh = speeds.get(event.track_id)
        if speed_kmh is None:
            return event
        if isinstance(event, LineCrossing):
            self.add(event.line, event.direction, speed_kmh)
        return dataclasses.replace(event, speed_kmh=speed_kmh)

    def add(self, line: str, direction: str, speed_kmh: float) -> None:
        total, count = self._sums.get((line, direction), (0.0, 0))
        self._sums[(line, direction)] = (total + speed_kmh, count + 1)

    def mean_kmh(self, line: str) -> dict[str, float | None]:
        sums = {d: self._sums.get((line, d), (0.0, 0)) for d in ("in", "out")}
        return {d: round(total / n, 2) if n else None for d, (total, n) in sums.items()}


def _line_counter(line: LineConfig, forget_after_s: float) -> LineCounter:
    lanes = [Lane(lane.name, lane.start, lane.end) for lane in line.lanes]
    return LineCounter(
        line.name,
        line.start,
        line.end,
        min_crossing_distance=line.min_crossing_distance,
        same_object_overlap=line.same_object_overlap,
        lanes=lanes,
        forget_after_s=forget_after_s,
    )


def _parking_monitor(parking: ParkingConfig) -> ParkingMonitor:
    return ParkingMonitor(
        {slot.name: slot.polygon for slot in parking.slots},
        parking.min_overlap,
        parking.debounce_s,
        rule=parking.rule,
        min_confidence=parking.min_confidence,
        footprint_fraction=parking.footprint_fraction,
        min_box_to_bay_area=parking.min_box_to_bay_area,
    )


def _speed_estimator(speed: SpeedConfig, forget_after_s: float) -> SpeedEstimator | None:
    """No estimator without calibration points."""
    if speed.image_points is None or speed.world_points is None:
        return None
    return SpeedEstimator(
        speed.image_points,
        speed.world_points,
        window_s=speed.window_s,
        max_kmh=speed.max_kmh,
        forget_after_s=forget_after_s,
    )


def _movement_counter(movements: MovementsConfig, forget_after_s: float) -> MovementCounter | None:
    """No counter with fewer than two approaches."""
    if len(movements.approaches) < 2:
        return None
    approaches = {approach.name: Approach.placed(approach.polygon, approach.gate) for approach in movements.approaches}
    return MovementCounter(
        approaches,
        min_outside_s=movements.min_outside_s,
        forget_after_s=forget_after_s,
        min_crossing_distance=movements.min_crossing_distance,
    )


def _line_summary(line: LineCounter, speeds: LineSpeeds | None, groups: ClassGroups) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "in": dict(sorted(line.crossings_in.items())),
        "out": dict(sorted(line.crossings_out.items())),
        "in_total": line.in_total,
        "out_total": line.out_total,
        "in_by_group": groups.regroup(line.crossings_in),
        "out_by_group": groups.regroup(line.crossings_out),
    }
    if line.lanes:
        entry["lanes"] = {name: {"in": c["in"], "out": c["out"]} for name, c in line.lane_counts.items()}
    if speeds is not None:
        entry["mean_speed_kmh"] = speeds.mean_kmh(line.name)
    return entry


def crosswalk_summary(counts: Mapping[str | None, int], is_line: bool) -> dict[str, int]:
    """A crosswalk's entry in ``summary.json``: its pedestrians in all, and per direction across a line.

    Example:
        >>> crosswalk_summary({"in": 2, "out": 1}, is_line=True)
        {'total': 3, 'in': 2, 'out': 1}
    """
    entry = {"total": sum(counts.values())}
    if is_line:
        entry.update({direction: counts.get(direction, 0) for direction in ("in", "out")})
    return entry


def _zone_summary(zone: ZoneCounter, end_s: float) -> dict[str, Any]:
    return {
        "max_count": zone.max_count,
        "mean_count": round(zone.mean_count, 3),
        "enters": zone.enters,
        "exits": zone.exits,
        "mean_dwell_s": round(zone.mean_dwell_s, 3),
        "max_dwell_s": round(zone.dwell_max_s, 3),
        "inside_at_end": _inside_at_end(zone, end_s),
    }


def _inside_at_end(zone: ZoneCounter, end_s: float) -> dict[str, float]:
    return {str(track_id): dwell_s for track_id, dwell_s in zone.dwell_so_far(end_s).items()}
