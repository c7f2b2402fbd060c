"""The analytics stage: line crossings and zone occupancy from tracked detections.

Pure geometry and per-track state (no drawing, no I/O), so every rule is tested exactly on
synthetic tracks. :class:`Analytics` runs all configured counters on each frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import supervision as sv

from pipeline.analytics.events import LineCrossing
from pipeline.analytics.lines import LineCounter
from pipeline.analytics.zones import ZoneCounter
from pipeline.config import LineConfig, ZoneConfig

__all__ = ["Analytics", "LineCounter", "LineCrossing", "ZoneCounter"]


class Analytics:
    """All of a run's counters, updated together once per frame.

    Args:
        lines: Counting lines from the config.
        zones: Polygon zones from the config.
        forget_after_s: How long a vanished track's counting state is kept (at least the tracker's buffer).

    Example:
        >>> analytics = Analytics([LineConfig("main", (0, 100), (200, 100))], [], forget_after_s=2.0)
        >>> analytics.line_counts()
        {'main': (0, 0)}
    """

    def __init__(self, lines: Sequence[LineConfig], zones: Sequence[ZoneConfig], forget_after_s: float) -> None:
        self.lines = [LineCounter(line.name, line.start, line.end, forget_after_s=forget_after_s) for line in lines]
        self.zones = [ZoneCounter(zone.name, zone.polygon) for zone in zones]

    def update(self, detections: sv.Detections, frame_index: int, timestamp_s: float) -> list[LineCrossing]:
        """Update every counter with one frame; returns the frame's events."""
        events = [event for line in self.lines for event in line.update(detections, frame_index, timestamp_s)]
        for zone in self.zones:
            zone.update(detections)
        return events

    def line_counts(self) -> dict[str, tuple[int, int]]:
        """Cumulative (in, out) per line, all classes."""
        return {line.name: (line.in_total, line.out_total) for line in self.lines}

    def zone_counts(self) -> dict[str, int]:
        """Objects inside each zone on the last frame."""
        return {zone.name: zone.count for zone in self.zones}

    def summary(self) -> dict[str, Any]:
        """The ``lines`` and ``zones`` sections of ``summary.json``."""
        return {
            "lines": {
                line.name: {
                    "in": dict(sorted(line.crossings_in.items())),
                    "out": dict(sorted(line.crossings_out.items())),
                    "in_total": line.in_total,
                    "out_total": line.out_total,
                }
                for line in self.lines
            },
            "zones": {
                zone.name: {"max_count": zone.max_count, "mean_count": round(zone.mean_count, 3)} for zone in self.zones
            },
        }
