"""The turning-movement count (TMC) a store holds: per camera and bin (15 minutes by default), every
approach x turn (left, through, right, U-turn) x class group, the movements that reached no exit, the
pedestrians per crosswalk; and per camera the peak hour, its peak-hour factor and, per approach, its
volumes, factor and heavy-vehicle share. See docs/traffic.md.

Counts come from the stored ``movement`` and ``crosswalk_crossing`` events (each one's ``turn`` and
``class_group``, written as the run went), binned as :func:`~pipeline.store.queries.counts` bins
them; bins a run watched get a row, zero or not.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.analytics.class_groups import OTHER, ClassGroups
from pipeline.config.columns import (
    TOTAL_VEHICLES,
    TURNS,
    UNASSIGNED,
    crosswalk_columns,
    tmc_columns,
    tmc_movement_column,
)
from pipeline.store.database import Database
from pipeline.store.queries import Span, bin_times, full_bins, watched_bins, watched_ms

PEAK_COLUMNS = [
    "camera",
    "peak_hour_start",
    "peak_hour_end",
    "approach",
    *TURNS,
    "total",
    "phf",
    "heavy_vehicle_pct",
    "bicycles",
]
"""The peak-hour table: per camera a row per approach, then ``approach`` ``all`` for the intersection."""


@dataclass
class TmcLayout:
    """What the table's columns are: the approaches (in config order where known), the class groups
    that make movements, which of them are heavy vehicles and bicycles, and the crosswalks.

    Example:
        >>> layout = TmcLayout(["N", "S"], ClassGroups.of_config(), ["N"])
        >>> layout.groups
        ['cars', 'trucks', 'buses', 'motorcycles', 'bicycles']
        >>> layout.columns[:3], layout.columns[-3:]
        (['N_left_cars', 'N_left_trucks', 'N_left_buses'], ['S_unassigned', 'ped_N', 'total_vehicles'])
    """

    approaches: list[str]
    class_groups: ClassGroups
    crosswalks: list[str]
    extra_groups: list[str] = field(default_factory=list)

    @property
    def groups(self) -> list[str]:
        """The groups that make movements (every kind but pedestrians), and any other seen."""
        kinds = self.class_groups.kinds
        named = [name for name, kind in kinds.items() if kind != "pedestrian" and name != OTHER]
        return named + [group for group in self.extra_groups if group not in named]

    def is_vehicle(self, group: str) -> bool:
        """Whether ``group`` counts as vehicles (light or heavy), not bicycles."""
        return self.class_groups.kinds.get(group, "vehicle") in ("vehicle", "heavy")

    def is_heavy(self, group: str) -> bool:
        return self.class_groups.kinds.get(group) == "heavy"

    @property
    def columns(self) -> list[str]:
        """Every column of the TMC table after :data:`~pipeline.config.columns.TMC_HEAD`."""
        return tmc_columns(self.approaches, self.groups, self.crosswalks)


@dataclass
class _Bin:
    movements: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(origin, turn, group): count; turn :data:`UNASSIGNED` for ``A->?``."""
    pedestrians: Counter[str] = field(default_factory=Counter)


@dataclass
class Tmc:
    """A store's TMC over a span: the layout, and per camera its bins (watched ones, zero or not)."""

    layout: TmcLayout
    interval_ms: int
    bins: dict[str, dict[int, _Bin]]
    watched: dict[str, Counter[int]] = field(default_factory=dict)
    """Per camera, how long its runs watched each bin, in ms (:func:`~pipeline.store.queries.watched_ms`)."""

    @property
    def full(self) -> dict[str, set[int]]:
        """Per camera, the bins its runs watched whole (:func:`~pipeline.store.queries.full_bins`): the only
        ones a peak hour is made of."""
        return full_bins(self.watched, self.interval_ms)

    def rows(self) -> list[dict[str, Any]]:
        """The TMC table: a row per camera and bin (:data:`~pipeline.config.columns.TMC_HEAD`, then the
        layout's columns), each saying how long the runs watched it and whether that was only part of it."""
        rows, full = [], self.full
        for camera, bins in sorted(self.bins.items()):
            for index, content in sorted(bins.items()):
                row: dict[str, Any] = {"camera": camera, **bin_times(index, self.interval_ms)}
                row["watched_s"] = round(self.watched.get(camera, Counter())[index] / 1000, 3)
                row["partial"] = index not in full.get(camera, ())
                row.update(dict.fromkeys(self.layout.columns, 0))
                for (origin, turn, group), count in content.movements.items():
                    row[tmc_movement_column(origin, turn, group)] += count
                    if turn != UNASSIGNED and self.layout.is_vehicle(group):
                        row[TOTAL_VEHICLES] += count
                for name, count in content.pedestrians.items():
                    row[crosswalk_columns(name, is_line=False)[0]] += count
                rows.append(row)
        return rows

    def peak_hours(self) -> dict[str, tuple[int, int, float | None]]:
        """Per camera its peak hour of vehicles: (first bin, bins in it, peak-hour factor), the hour of
        consecutive whole bins (:attr:`full`) with the most vehicles, the first of equal ones: a bin a
        run watched only part of (a run starting mid-bin) would make a low V15 and a wrong factor.
        Without a whole hour of whole bins, the run's whole bins (all its bins if none is whole) with
        the factor None. None at all without vehicles; empty where bins do not divide an hour."""
        hour = 3_600_000 / self.interval_ms
        if hour < 1 or hour != int(hour):
            return {}
        peaks, whole = {}, self.full
        for camera, bins in self.bins.items():
            volumes = {index: self._vehicles(content) for index, content in bins.items()}
            full = sorted(whole.get(camera, set()) & set(bins)) or sorted(bins)
            best: tuple[int, int] | None = None  # (volume, first bin)
            for first in full:
                window = range(first, first + int(hour))
                if all(index in whole.get(camera, ()) for index in window):
                    volume = sum(volumes.get(index, 0) for index in window)
                    best = best if best is not None and best[0] >= volume else (volume, first)
            if best is not None and best[0]:
                first, length = best[1], int(hour)
                largest = max(volumes.get(index, 0) for index in range(first, first + length))
                peaks[camera] = (first, length, round(best[0] / (length * largest), 3))
            elif sum(volumes.get(index, 0) for index in full):
                peaks[camera] = (full[0], min(int(hour), full[-1] + 1 - full[0]), None)
        return peaks

    def _vehicles(self, content: _Bin, origin: str | None = None) -> int:
        return sum(
            count
            for (o, turn, group), count in content.movements.items()
            if turn != UNASSIGNED and self.layout.is_vehicle(group) and origin in (None, o)
        )

    def peak_rows(self) -> list[dict[str, Any]]:
        """The peak-hour table (:data:`PEAK_COLUMNS`): per approach its vehicles per turn in the peak
        hour, their total, its own peak-hour factor within that hour (None short of an hour) and heavy
        vehicles' share of its vehicles (%); bicycles apart. The intersection's row is ``all``."""
        rows = []
        for camera, (first, length, phf) in sorted(self.peak_hours().items()):
            bins = [self.bins[camera].get(index, _Bin()) for index in range(first, first + length)]
            head = {
                "camera": camera,
                "peak_hour_start": bin_times(first, self.interval_ms)["interval_start"],
                "peak_hour_end": bin_times(first + length - 1, self.interval_ms)["interval_end"],
            }
            full = phf is not None
            for approach in [*self.layout.approaches, None]:
                rows.append({**head, **self._approach_peak(bins, approach, full)})
            rows[-1]["phf"] = phf
        return rows

    def _approach_peak(self, bins: Sequence[_Bin], approach: str | None, full: bool) -> dict[str, Any]:
        turns: Counter[str] = Counter()
        heavy = bicycles = 0
        for content in bins:
            for (origin, turn, group), count in content.movements.items():
                if approach not in (None, origin) or turn == UNASSIGNED:
                    continue
                if self.layout.is_vehicle(group):
                    turns[turn] += count
                    heavy += count if self.layout.is_heavy(group) else 0
                else:
                    bicycles += count
        total = sum(turns.values())
        largest = max(self._vehicles(content, approach) for content in bins)
        return {
            "approach": approach or "all",
            **{turn: turns[turn] for turn in TURNS},
            "total": total,
            "phf": round(total / (len(bins) * largest), 3) if full and largest else None,
            "heavy_vehicle_pct": round(100 * heavy / total, 1) if total else None,
            "bicycles": bicycles,
        }


def tmc(
    db: Database,
    span: Span,
    class_groups: ClassGroups,
    approaches: Sequence[str] = (),
    crosswalks: Sequence[str] = (),
) -> Tmc:
    """The TMC of the movements and crosswalk crossings stored in ``span``.

    Args:
        db: The store.
        span: Cameras, times and the bin length.
        class_groups: The runs' class groups (their kinds say which are heavy vehicles, bicycles).
        approaches: The approaches in the order the table lists them; any other seen follows, as first seen.
        crosswalks: The crosswalks likewise.
    """
    start, end = span.bounds(db)
    where, params = span.camera_filter()
    records = db.execute(
        f"SELECT camera, time_ms / ?, record FROM events WHERE event IN (?, ?) AND time_ms >= ? AND time_ms < ?{where}",
        [span.interval_ms, "movement", "crosswalk_crossing", start, end, *params],
    )
    bins: dict[str, dict[int, _Bin]] = defaultdict(dict)
    for camera, indices in watched_bins(db, span, start, end).items():
        bins[camera].update({index: _Bin() for index in indices})
    seen_approaches, seen_walks, seen_groups = list(approaches), list(crosswalks), []
    for camera, index, text in records:
        record = json.loads(text)
        content = bins[camera].setdefault(int(index), _Bin())
        if record["event"] == "crosswalk_crossing":
            content.pedestrians[record["crosswalk"]] += 1
            _add_new(seen_walks, record["crosswalk"])
            continue
        group = record.get("class_group") or class_groups.group(record["class_name"])
        origin, destination = record["origin"], record.get("destination")
        turn = record.get("turn") if destination is not None else UNASSIGNED
        content.movements[origin, turn or UNASSIGNED, group] += 1
        for name in (origin, destination):
            if name is not None:
                _add_new(seen_approaches, name)
        _add_new(seen_groups, group)
    layout = TmcLayout(seen_approaches, class_groups, seen_walks, seen_groups)
    return Tmc(layout, span.interval_ms, dict(bins), watched_ms(db, span, start, end))


def _add_new(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)
