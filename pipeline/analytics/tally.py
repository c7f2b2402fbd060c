"""Counting what a slice counts: events, movements, crosswalks and zone occupancy of its counted frames only.

The counters of :class:`pipeline.analytics.Analytics` run over the warm-up too (that is the point
of it), so their totals include events a slice must not count. :class:`SliceTally` keeps its own
totals from the events emitted on counted frames, in the same shape as ``summary.json``.

Example:
    >>> from pipeline.analytics.events import LineCrossing
    >>> tally = SliceTally(["main"], [], lanes={"main": []})
    >>> tally.add([LineCrossing(120, 4.0, "main", "in", track_id=7, class_name="car")], zone_counts={})
    >>> tally.line_columns()
    {'main_in': 1, 'main_out': 0}
    >>> tally.summary().lines["main"]["in"]
    {'car': 1}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from statistics import mean
from typing import Any

from pipeline.analytics import Analytics, Counts, crosswalk_summary
from pipeline.analytics.class_groups import ClassGroups
from pipeline.analytics.events import CrosswalkCrossing, Event, LineCrossing, Movement, ZoneEnter, ZoneExit
from pipeline.analytics.movements import movement_count
from pipeline.config.columns import line_columns, movement_name


class _LineTally:
    def __init__(self, lanes: Sequence[str]) -> None:
        self.counts: dict[str, Counter[str]] = {"in": Counter(), "out": Counter()}
        self.lanes: dict[str, Counter[str]] = {lane: Counter() for lane in lanes}
        self.speeds: dict[str, list[float]] = {"in": [], "out": []}

    def add(self, crossing: LineCrossing) -> None:
        self.counts[crossing.direction][crossing.class_name] += 1
        if crossing.lane is not None and crossing.lane in self.lanes:
            self.lanes[crossing.lane][crossing.direction] += 1
        if crossing.speed_kmh is not None:
            self.speeds[crossing.direction].append(crossing.speed_kmh)

    def summary(self, with_speed: bool, groups: ClassGroups | None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "in": dict(sorted(self.counts["in"].items())),
            "out": dict(sorted(self.counts["out"].items())),
            "in_total": sum(self.counts["in"].values()),
            "out_total": sum(self.counts["out"].values()),
        }
        if groups is not None:
            entry.update(in_by_group=groups.regroup(self.counts["in"]), out_by_group=groups.regroup(self.counts["out"]))
        if self.lanes:
            entry["lanes"] = {name: {"in": c["in"], "out": c["out"]} for name, c in self.lanes.items()}
        if with_speed:
            entry["mean_speed_kmh"] = {d: round(mean(v), 2) if v else None for d, v in self.speeds.items()}
        return entry


class _ZoneTally:
    def __init__(self) -> None:
        self.max_count = 0
        self.count_sum = 0
        self.frames = 0
        self.enters = 0
        self.dwells: list[float] = []

    def add_frame(self, count: int) -> None:
        self.max_count = max(self.max_count, count)
        self.count_sum += count
        self.frames += 1

    def summary(self, inside_at_end: Mapping[str, float]) -> dict[str, Any]:
        return {
            "max_count": self.max_count,
            "mean_count": round(self.count_sum / self.frames, 3) if self.frames else 0.0,
            "enters": self.enters,
            "exits": len(self.dwells),
            "mean_dwell_s": round(mean(self.dwells), 3) if self.dwells else 0.0,
            "max_dwell_s": round(max(self.dwells), 3) if self.dwells else 0.0,
            "inside_at_end": dict(inside_at_end),
        }


class SliceTally:
    """Line, movement, crosswalk and zone totals over a slice's counted frames.

    Args:
        lines: Line names, in config order.
        zones: Zone names, in config order.
        lanes: Lane names per line.
        with_speed: Whether speed calibration is on (adds ``mean_speed_kmh`` per line).
        movements: Every movement between named approaches (``A->B``), counted or not; None
            without ``movements`` in the config.
        groups: The class groups line and movement counts are also given by (None: by class only).
        turns: Each movement's turn (``left``, ``through``, ...), given with its counts.
        crosswalks: Per crosswalk, whether it is a line (counted per direction) rather than a polygon.
    """

    def __init__(
        self,
        lines: Sequence[str],
        zones: Sequence[str],
        lanes: Mapping[str, Sequence[str]],
        with_speed: bool = False,
        movements: Sequence[str] | None = None,
        groups: ClassGroups | None = None,
        turns: Mapping[str, str] | None = None,
        crosswalks: Mapping[str, bool] | None = None,
    ) -> None:
        self._groups = groups
        self._turns = dict(turns or {})
        self._lines = {name: _LineTally(lanes.get(name, ())) for name in lines}
        self._movements = None if movements is None else {name: Counter[str]() for name in movements}
        self._zones = {name: _ZoneTally() for name in zones}
        self._crosswalks = {name: (is_line, Counter[str | None]()) for name, is_line in (crosswalks or {}).items()}
        self._with_speed = with_speed

    @classmethod
    def for_analytics(cls, analytics: Analytics) -> SliceTally:
        """A tally of what ``analytics`` counts: its lines and their lanes, zones, movements and speeds."""
        movements = analytics.movements
        return cls(
            [line.name for line in analytics.lines],
            [zone.name for zone in analytics.zones],
            lanes={line.name: [lane.name for lane in line.lanes] for line in analytics.lines},
            with_speed=analytics.speed is not None,
            movements=None if movements is None else [movement_name(*pair) for pair in movements.pairs],
            groups=analytics.groups,
            turns=None if movements is None else {movement_name(*pair): t for pair, t in movements.turns.items()},
            crosswalks={c.name: c.polygon is None for c in analytics.crosswalks},
        )

    def add(self, events: Iterable[Event], zone_counts: Mapping[str, int]) -> None:
        """Add one counted frame: the events it emitted and the objects in each zone."""
        for event in events:
            if isinstance(event, LineCrossing):
                self._lines[event.line].add(event)
            elif isinstance(event, ZoneEnter):
                self._zones[event.zone].enters += 1
            elif isinstance(event, ZoneExit):
                self._zones[event.zone].dwells.append(event.dwell_s)
            elif isinstance(event, Movement) and self._movements is not None:
                self._movements.setdefault(event.movement, Counter())[event.class_name] += 1
            elif isinstance(event, CrosswalkCrossing) and event.crosswalk in self._crosswalks:
                self._crosswalks[event.crosswalk][1][event.direction] += 1
        for name, count in zone_counts.items():
            self._zones[name].add_frame(count)

    def line_columns(self) -> dict[str, int]:
        """Cumulative ``<line>_in`` / ``<line>_out`` since the slice's first counted frame."""
        columns = {}
        for name, line in self._lines.items():
            totals = (sum(line.counts[direction].values()) for direction in ("in", "out"))
            columns.update(zip(line_columns(name), totals, strict=True))
        return columns

    def summary(self, inside_at_end: Mapping[str, Mapping[str, float]] | None = None) -> Counts:
        """The ``lines``, ``zones`` and (configured) ``movements`` and ``crosswalks`` sections of
        ``summary.json`` (of ``movements`` only its ``counts``); ``inside_at_end``: the tracks in each
        zone at the end."""
        inside = inside_at_end or {}
        movements = None
        if self._movements is not None:
            counts = {name: movement_count(c, self._groups) for name, c in self._movements.items()}
            for name, turn in self._turns.items():
                counts.setdefault(name, movement_count(Counter(), self._groups))["turn"] = turn
            movements = {"counts": counts}
        return Counts(
            lines={name: line.summary(self._with_speed, self._groups) for name, line in self._lines.items()},
            zones={name: zone.summary(inside.get(name, {})) for name, zone in self._zones.items()},
            movements=movements,
            crosswalks={
                name: crosswalk_summary(counts, is_line) for name, (is_line, counts) in self._crosswalks.items()
            }
            or None,
        )
