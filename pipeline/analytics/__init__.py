"""The analytics stage: line crossings, zones and dwell time, parking occupancy, speed.

Pure geometry and per-track state (no drawing, no I/O), so every rule is tested exactly on
synthetic tracks. :class:`Analytics` runs all configured counters on each frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import supervision as sv

from pipeline.analytics.events import Event, LineCrossing, Movement, SlotChange, ZoneEnter, ZoneExit
from pipeline.analytics.lines import Lane, LineCounter
from pipeline.analytics.movements import MovementCounter, movement_name
from pipeline.analytics.parking import ParkingMonitor
from pipeline.analytics.speed import SpeedEstimator
from pipeline.analytics.views import AnalyticsView, LineView, MovementsView, ParkingView, ZoneView
from pipeline.analytics.zones import ZoneCounter
from pipeline.config import Config, LineConfig, MovementsConfig, ParkingConfig, SpeedConfig, ZoneConfig

__all__ = [
    "Analytics",
    "AnalyticsView",
    "Event",
    "LineCounter",
    "LineCrossing",
    "Movement",
    "MovementCounter",
    "ParkingMonitor",
    "SlotChange",
    "SpeedEstimator",
    "ZoneCounter",
    "ZoneEnter",
    "ZoneExit",
]


class Analytics:
    """All of a run's counters, updated together once per frame.

    Args:
        lines: Counting lines from the config.
        zones: Polygon zones from the config.
        forget_after_s: How long a vanished track's state is kept (at least the tracker's buffer).
        parking: Parking slots and their rules; no slots, no parking monitor.
        speed: Speed calibration; without points, no speeds.
        movements: Approaches for turning movements; fewer than two, no movement counter.

    Example:
        >>> analytics = Analytics([LineConfig("main", (0, 100), (200, 100))], [], forget_after_s=2.0)
        >>> analytics.line_counts()
        {'main': (0, 0)}
    """

    def __init__(
        self,
        lines: Sequence[LineConfig],
        zones: Sequence[ZoneConfig],
        forget_after_s: float,
        parking: ParkingConfig | None = None,
        speed: SpeedConfig | None = None,
        movements: MovementsConfig | None = None,
    ) -> None:
        self.lines = [
            LineCounter(
                line.name,
                line.start,
                line.end,
                min_crossing_distance=line.min_crossing_distance,
                lanes=[Lane(lane.name, lane.start, lane.end) for lane in line.lanes],
                forget_after_s=forget_after_s,
            )
            for line in lines
        ]
        self.zones = [ZoneCounter(zone.name, zone.polygon, lost_grace_s=forget_after_s) for zone in zones]
        self.parking = (
            ParkingMonitor(
                {slot.name: slot.polygon for slot in parking.slots},
                parking.min_overlap,
                parking.debounce_s,
                rule=parking.rule,
                min_confidence=parking.min_confidence,
                footprint_fraction=parking.footprint_fraction,
            )
            if parking is not None and parking.slots
            else None
        )
        self.speed = (
            SpeedEstimator(
                speed.image_points,
                speed.world_points,
                window_s=speed.window_s,
                max_kmh=speed.max_kmh,
                forget_after_s=forget_after_s,
            )
            if speed is not None and speed.image_points is not None and speed.world_points is not None
            else None
        )
        self.movements = (
            MovementCounter(
                {approach.name: approach.polygon for approach in movements.approaches},
                min_outside_s=movements.min_outside_s,
                forget_after_s=forget_after_s,
            )
            if movements is not None and len(movements.approaches) >= 2
            else None
        )
        # Running (sum, count) of crossing speeds per (line, direction): constant memory however long the run.
        self._line_speeds: dict[tuple[str, str], tuple[float, int]] = {}

    @classmethod
    def for_run(cls, config: Config) -> Analytics:
        """Every counter ``config`` asks for (geometry already in the source's pixels), as a run has them."""
        # Keep a vanished track's counting state a little longer than ByteTrack can revive it.
        forget_after_s = config.tracker.track_buffer_s + 1.0
        return cls(
            config.lines,
            config.zones,
            forget_after_s,
            parking=config.parking,
            speed=config.speed,
            movements=config.movements,
        )

    def update(
        self, detections: sv.Detections, frame_index: int, timestamp_s: float, raw: sv.Detections | None = None
    ) -> list[Event]:
        """Update every counter with one frame; returns the frame's events.

        ``detections`` are the tracked ones; parking judges the frame's own ``raw`` detections when given
        (a car seen on one snapshot, or too faint to start a track, still occupies its slot)."""
        speeds = self.speed.update(detections, timestamp_s) if self.speed is not None else {}
        events: list[Event] = [e for line in self.lines for e in line.update(detections, frame_index, timestamp_s)]
        events += [e for zone in self.zones for e in zone.update(detections, frame_index, timestamp_s)]
        if self.movements is not None:
            events += self.movements.update(detections, frame_index, timestamp_s)
        if speeds:
            events = [self._with_speed(event, speeds) for event in events]
        if self.parking is not None:
            events += self.parking.update(raw if raw is not None else detections, frame_index, timestamp_s)
        return events

    def _with_speed(self, event: Event, speeds: dict[int, float | None]) -> Event:
        speed_kmh = speeds.get(getattr(event, "track_id", -1))
        if speed_kmh is None or not hasattr(event, "speed_kmh"):
            return event
        if isinstance(event, LineCrossing):
            total, count = self._line_speeds.get((event.line, event.direction), (0.0, 0))
            self._line_speeds[(event.line, event.direction)] = (total + speed_kmh, count + 1)
        return dataclasses.replace(event, speed_kmh=speed_kmh)  # type: ignore[type-var]

    def rescale(self, sx: float, sy: float) -> None:
        """Follow a change of the source's resolution by (sx, sy); every count and state is kept."""
        for counter in [*self.lines, *self.zones, self.parking, self.speed, self.movements]:
            if counter is not None:
                counter.rescale(sx, sy)

    def view(self) -> AnalyticsView:
        """A frozen snapshot of what the overlays draw, safe to hand to another thread."""
        parking = None
        if self.parking is not None:
            parking = ParkingView(self.parking.polygons, self.parking.occupied)
        return AnalyticsView(
            lines=tuple(
                LineView(line.name, line.start, line.end, line.in_total, line.out_total) for line in self.lines
            ),
            zones=tuple(ZoneView(zone.name, zone.polygon, zone.count) for zone in self.zones),
            parking=parking,
            movements=self.movements_view(),
        )

    def movements_view(self) -> MovementsView | None:
        """The approaches and the counts between them, for the origin-destination overlay."""
        if self.movements is None:
            return None
        counts = {pair: self.movements.total(*pair) for pair in self.movements.pairs}
        return MovementsView(dict(self.movements.polygons), counts)

    @property
    def columns(self) -> list[str]:
        """The analytics columns of ``counts.csv``: ``<line>_in, <line>_out`` per line, ``<zone>_count``
        per zone, ``<origin>-><destination>`` per pair of approaches (U-turns included), then
        ``slots_occupied, slots_free`` with parking."""
        columns = [f"{line.name}_{direction}" for line in self.lines for direction in ("in", "out")]
        columns += [f"{zone.name}_count" for zone in self.zones]
        if self.movements is not None:
            columns += [movement_name(*pair) for pair in self.movements.pairs]
        if self.parking is not None:
            columns += ["slots_occupied", "slots_free"]
        return columns

    def row(self) -> dict[str, int]:
        """The current values of :attr:`columns` (line counts are cumulative, all classes)."""
        row = {}
        for line in self.lines:
            row[f"{line.name}_in"], row[f"{line.name}_out"] = line.in_total, line.out_total
        row.update({f"{zone.name}_count": zone.count for zone in self.zones})
        if self.movements is not None:
            row.update({movement_name(*pair): self.movements.total(*pair) for pair in self.movements.pairs})
        if self.parking is not None:
            row["slots_occupied"], row["slots_free"] = self.parking.occupied_count, self.parking.free_count
        return row

    def line_counts(self) -> dict[str, tuple[int, int]]:
        """Cumulative (in, out) per line, all classes."""
        return {line.name: (line.in_total, line.out_total) for line in self.lines}

    def zone_counts(self) -> dict[str, int]:
        """Objects inside each zone on the last frame."""
        return {zone.name: zone.count for zone in self.zones}

    @property
    def tracks_held(self) -> int:
        """Per-track states held by all counters (bounded by pruning)."""
        held = sum(line.tracks_held for line in self.lines) + sum(zone.tracks_held for zone in self.zones)
        held += self.movements.tracks_held if self.movements is not None else 0
        return held + (self.speed.tracks_held if self.speed is not None else 0)

    def summary(self, end_s: float) -> dict[str, Any]:
        """The analytics sections of ``summary.json``; ``end_s`` is the end of the processed video."""
        lines = {}
        for line in self.lines:
            entry: dict[str, Any] = {
                "in": dict(sorted(line.crossings_in.items())),
                "out": dict(sorted(line.crossings_out.items())),
                "in_total": line.in_total,
                "out_total": line.out_total,
            }
            if line.lanes:
                entry["lanes"] = {name: {"in": c["in"], "out": c["out"]} for name, c in line.lane_counts.items()}
            if self.speed is not None:
                speeds = {d: self._line_speeds.get((line.name, d), (0.0, 0)) for d in ("in", "out")}
                entry["mean_speed_kmh"] = {d: round(s / n, 2) if n else None for d, (s, n) in speeds.items()}
            lines[line.name] = entry
        summary: dict[str, Any] = {
            "lines": lines,
            "zones": {
                zone.name: {
                    "max_count": zone.max_count,
                    "mean_count": round(zone.mean_count, 3),
                    "enters": zone.enters,
                    "exits": zone.exits,
                    "mean_dwell_s": round(zone.mean_dwell_s, 3),
                    "max_dwell_s": round(zone.dwell_max_s, 3),
                    "inside_at_end": {str(k): v for k, v in zone.dwell_so_far(end_s).items()},
                }
                for zone in self.zones
            },
        }
        if self.movements is not None:
            summary["movements"] = self.movements.summary()
        if self.parking is not None:
            summary["parking"] = self.parking.summary(end_s)
        return summary
