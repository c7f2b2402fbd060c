"""What ``vpipe report`` reads from a store: line and movement counts per interval, direction and
class, and each lot's parking occupancy per interval, over any span, across runs and restarts.

Bins are aligned to UTC (15-minute bins start at :00, :15, :30, :45; a day's at midnight UTC). A bin
that any run of a camera overlaps gets rows, zero or not; a bin no run overlapped has none (the
camera was not watched then). Counts come from the events themselves, so any interval can be asked
for, whatever ``output.interval`` the runs had.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.analytics.intervals import whole_bin
from pipeline.errors import OutputError
from pipeline.store.database import Database, connect
from pipeline.store.schema import SCHEMA_VERSION, check_version, schema_version
from pipeline.store.writes import iso_utc

COUNT_COLUMNS = ["camera", "interval_start", "interval_end", "kind", "name", "direction", "class_name", "count"]
PARKING_COLUMNS = ["camera", "interval_start", "interval_end", "slots", "occupied", "free", "max_occupied"]

COUNTED_EVENTS = {"line_crossing": "line", "movement": "movement", "crosswalk_crossing": "crosswalk"}
"""The events a report counts, and the ``kind`` each is counted as (as in ``intervals.csv``)."""


def open_for_reading(target: str) -> Database:
    """Open an existing store to read.

    Raises:
        OutputError: There is none at ``target``, it is not a vpipe store, or not of this vpipe's schema.
    """
    db = connect(target, create=False)
    try:
        version = schema_version(db)
        check_version(db, version)
        if version < SCHEMA_VERSION:
            raise OutputError(
                f"the store {db.target} has schema version {version}: a vpipe run or vpipe import into it migrates it"
            )
    except BaseException:
        db.close()
        raise
    return db


@dataclass(frozen=True)
class Span:
    """What a report covers: ``[start_ms, end_ms)`` in bins of ``interval_ms``, of ``cameras`` (all if empty)."""

    start_ms: int | None
    end_ms: int | None
    interval_ms: int
    cameras: tuple[str, ...] = ()

    def camera_filter(self) -> tuple[str, list[Any]]:
        """SQL that keeps the span's cameras (``AND camera IN (...)``), and its parameters."""
        if not self.cameras:
            return "", []
        return f" AND camera IN ({', '.join('?' * len(self.cameras))})", list(self.cameras)

    def bounds(self, db: Database) -> tuple[int, int]:
        """The span's start and end; where not given, those of everything stored."""
        where, params = self.camera_filter()
        first, last = db.execute(f"SELECT MIN(started_ms), MAX(last_ms) FROM runs WHERE 1 = 1{where}", params)[0]
        start = self.start_ms if self.start_ms is not None else int(first or 0)
        end = self.end_ms if self.end_ms is not None else int(last or 0) + 1
        return start, end


def watched_bins(db: Database, span: Span, start: int, end: int) -> dict[str, set[int]]:
    """Per camera, the bins of ``[start, end)`` that a run of it overlaps."""
    where, params = span.camera_filter()
    runs = db.execute(
        f"SELECT camera, started_ms, last_ms FROM runs WHERE last_ms >= ? AND started_ms < ?{where}",
        [start, end, *params],
    )
    bins: dict[str, set[int]] = defaultdict(set)
    for camera, started_ms, last_ms in runs:
        first, last = max(started_ms, start), min(last_ms, end - 1)
        bins[camera].update(range(first // span.interval_ms, last // span.interval_ms + 1))
    return bins


def watched_ms(db: Database, span: Span, start: int, end: int) -> dict[str, Counter[int]]:
    """Per camera, how long its runs watched each bin of ``[start, end)`` (from their first to their last
    frame; runs that overlap count once), in milliseconds."""
    where, params = span.camera_filter()
    runs = db.execute(
        f"SELECT camera, started_ms, last_ms FROM runs WHERE last_ms >= ? AND started_ms < ?{where} "
        "ORDER BY camera, started_ms",
        [start, end, *params],
    )
    watched: dict[str, Counter[int]] = defaultdict(Counter)
    reached: dict[str, int] = {}  # per camera, how far the runs so far reach: overlapping runs count once
    for camera, started_ms, last_ms in runs:
        first, last = max(started_ms, start, reached.get(camera, start)), min(last_ms, end)
        reached[camera] = max(reached.get(camera, start), last)
        while first < last:
            index = first // span.interval_ms
            edge = min(last, (index + 1) * span.interval_ms)
            watched[camera][index] += edge - first
            first = edge
    return dict(watched)


def full_bins(watched: Mapping[str, Mapping[int, int]], interval_ms: int) -> dict[str, set[int]]:
    """Per camera, the bins of ``watched`` (:func:`watched_ms`) its runs watched whole
    (:func:`~pipeline.analytics.intervals.whole_bin`: all of the bin but at most 2 s). A run that starts
    or ends inside a bin leaves it partial.

    Example:
        >>> full_bins({"gate": {0: 900_000, 1: 898_000, 2: 300_000}}, 900_000)
        {'gate': {0, 1}}
    """
    interval_s = interval_ms / 1000
    return {
        camera: {index for index, ms in bins.items() if whole_bin(ms / 1000, interval_s)}
        for camera, bins in watched.items()
    }


def counts(db: Database, span: Span) -> list[dict[str, Any]]:
    """Line crossings and movements per camera, bin, line or movement, direction and class.

    Returns:
        Rows of :data:`COUNT_COLUMNS`, by camera, bin, kind, name and direction: a ``class_name``
        ``all`` row for every line direction and movement the camera has in the span (0 if none
        passed), then one per class that did.
    """
    start, end = span.bounds(db)
    where, params = span.camera_filter()
    kinds = tuple(COUNTED_EVENTS)
    grouped = db.execute(
        "SELECT camera, time_ms / ?, event, name, COALESCE(direction, ''), class_name, COUNT(*) FROM events "
        f"WHERE event IN ({', '.join('?' * len(kinds))}) AND time_ms >= ? AND time_ms < ?{where} "
        "GROUP BY 1, 2, 3, 4, 5, 6",
        [span.interval_ms, *kinds, start, end, *params],
    )
    found: dict[tuple[str, int, tuple[str, str, str]], Counter[str]] = defaultdict(Counter)
    keys: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    bins = watched_bins(db, span, start, end)
    for camera, bin_index, event, name, direction, class_name, count in grouped:
        key = (COUNTED_EVENTS[event], name, direction)
        found[camera, int(bin_index), key][class_name] += count
        keys[camera].add(key)
        bins[camera].add(int(bin_index))
    # Every key the camera's runs count in the span, from their interval rows: they list every line
    # direction and movement, zero or not.
    for camera, kind, name, direction in db.execute(
        f"SELECT DISTINCT camera, kind, name, direction FROM intervals WHERE start_ms < ? AND end_ms > ?{where}",
        [end, start, *params],
    ):
        keys[camera].add((kind, name, direction))
    rows = []
    for camera in sorted(bins):
        for bin_index in sorted(bins[camera]):
            head = {"camera": camera, **bin_times(bin_index, span.interval_ms)}
            for key in sorted(keys[camera]):
                classes = found.get((camera, bin_index, key), Counter())
                kind, name, direction = key
                base = {**head, "kind": kind, "name": name, "direction": direction}
                rows.append({**base, "class_name": "all", "count": sum(classes.values())})
                rows += [{**base, "class_name": c, "count": n} for c, n in sorted(classes.items())]
    return rows


def bin_times(bin_index: int, interval_ms: int) -> dict[str, str]:
    """A bin's ``interval_start`` and ``interval_end`` (ISO 8601 UTC)."""
    return {"interval_start": iso_utc(bin_index * interval_ms), "interval_end": iso_utc((bin_index + 1) * interval_ms)}


@dataclass
class _LotBin:
    slots: int
    occupied: int
    max_occupied: int


def parking(db: Database, span: Span) -> list[dict[str, Any]]:
    """Each lot's (camera's) occupancy per bin: its bays, those occupied at the bin's end (or its run's),
    those free then, and the most occupied at once in the bin.

    A run's bays start free and follow its slots' state changes; where two runs of a camera share a
    bin (a restart), the later run's state at the end is the bin's, the most occupied the larger.

    Returns:
        Rows of :data:`PARKING_COLUMNS`, by camera and bin.
    """
    start, end = span.bounds(db)
    where, params = span.camera_filter()
    runs = db.execute(
        "SELECT camera, run_id, started_ms, last_ms, slots FROM runs "
        f"WHERE slots IS NOT NULL AND last_ms >= ? AND started_ms < ?{where} ORDER BY started_ms",
        [start, end, *params],
    )
    lots: dict[tuple[str, int], _LotBin] = {}
    for camera, run_id, started_ms, last_ms, slots in runs:
        changes = db.execute(
            "SELECT slot, occupied, time_ms FROM parking_states WHERE camera = ? AND run_id = ? AND time_ms < ? "
            "ORDER BY time_ms, seq",
            [camera, run_id, end],
        )
        for bin_index, lot in _replay(changes, max(started_ms, start), min(last_ms, end - 1), span.interval_ms, slots):
            earlier = lots.get((camera, bin_index))
            if earlier is not None:
                lot.max_occupied = max(lot.max_occupied, earlier.max_occupied)
            lots[camera, bin_index] = lot
    rows = []
    for (camera, bin_index), lot in sorted(lots.items()):
        rows.append(
            {
                "camera": camera,
                **bin_times(bin_index, span.interval_ms),
                "slots": lot.slots,
                "occupied": lot.occupied,
                "free": lot.slots - lot.occupied,
                "max_occupied": lot.max_occupied,
            }
        )
    return rows


def _replay(
    changes: Sequence[tuple[str, int, int]], first_ms: int, last_ms: int, interval_ms: int, slots: int
) -> list[tuple[int, _LotBin]]:
    """One run's slot changes (in time order) replayed from all bays free: its lot in each bin from
    the one holding ``first_ms`` to the one holding ``last_ms``."""
    occupied: set[str] = set()
    position = 0

    def apply_until(until_ms: int) -> int:
        """Apply the changes before ``until_ms``; the most bays occupied at once meanwhile (after all
        the changes of one moment: one frame's)."""
        nonlocal position
        most = len(occupied)
        while position < len(changes) and changes[position][2] < until_ms:
            slot, state, moment = changes[position]
            (occupied.add if state else occupied.discard)(slot)
            position += 1
            if position == len(changes) or changes[position][2] != moment:
                most = max(most, len(occupied))
        return most

    apply_until(first_ms)
    bins = []
    for bin_index in range(first_ms // interval_ms, last_ms // interval_ms + 1):
        most = apply_until(min((bin_index + 1) * interval_ms, last_ms + 1))
        bins.append((bin_index, _LotBin(slots, len(occupied), most)))
    return bins
