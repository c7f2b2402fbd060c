"""Writing to a store: a run's row, its events (with the parking states among them) and its interval
rows, each batch in one transaction; every insert keyed so that a record written twice is stored once.

A record is identified by ``(camera, run_id, seq)``. Records (and interval rows) that carry ``run_id``
and ``seq`` keep theirs; for those that do not, the writer gives its run's id and the record's position
in the run's ``events.jsonl`` (1, 2, ...), which is the same each time the same folder is read. A
record's time is its run's start plus its ``timestamp_s`` (see :func:`record_time_ms`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.analytics.events import happened_s
from pipeline.config.fields import parse_time
from pipeline.store.database import Database, connect
from pipeline.store.schema import migrate

SLOT_EVENTS = {"slot_occupied": 1, "slot_free": 0}
"""The events that are a parking slot's state change, and the state each one says."""

NAME_FIELDS = ("line", "zone", "movement", "slot", "crosswalk")
"""Where an event says what it is about; the store keeps it in one column, ``name``."""


def iso_utc(time_ms: int) -> str:
    """``2024-05-01T07:00:00.250Z`` for Unix milliseconds (whole seconds without the fraction).

    Example:
        >>> iso_utc(1714546800250), iso_utc(1714546800000)
        ('2024-05-01T07:00:00.250Z', '2024-05-01T07:00:00Z')
    """
    moment = datetime.fromtimestamp(time_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds" if time_ms % 1000 else "seconds").replace("+00:00", "Z")


def now_ms() -> int:
    return round(time.time() * 1000)


@dataclass
class RunInfo:
    """One run of one camera, as the ``runs`` table holds it.

    Attributes:
        camera: The camera's name (``publish.camera``, else the source's name).
        run_id: The run's id.
        source: The source, as the summary names it (no credentials).
        output_dir: The run's folder, absolute.
        started_ms: Unix time of the run's time 0 (its first frame), in milliseconds.
        slots: Parking bays watched (None: no parking).
    """

    camera: str
    run_id: str
    source: str
    output_dir: str
    started_ms: int
    slots: int | None = None


@dataclass
class Batch:
    """What one transaction writes for a run: events (each with the ``seq`` it gets if it has none),
    interval rows as ``intervals.csv`` has them, and how far the run has got.

    Attributes:
        origin_ms: Unix time of the ``timestamp_s`` 0 of these records (a continued run's own start).
        last_ms: The run has seen frames up to here.
    """

    origin_ms: int
    last_ms: int
    events: list[tuple[int, Mapping[str, Any]]] = field(default_factory=list)
    intervals: list[Mapping[str, Any]] = field(default_factory=list)


class StoreWriter:
    """Writes runs to a store, creating and migrating it first.

    Args:
        target: A SQLite file (created if missing) or a ``postgresql://`` URL.

    Raises:
        OutputError: The store cannot be opened, is newer than this vpipe, or cannot be written.
    """

    def __init__(self, target: str) -> None:
        self.db: Database = connect(target, create=True)
        try:
            migrate(self.db)
        except BaseException:
            self.db.close()
            raise
        self.target = self.db.target

    def begin(self, run: RunInfo, last_ms: int, status: str = "running", replace: bool = False) -> None:
        """Add ``run`` (or take up a run of the same id again: its first start is kept).

        Args:
            run: The run.
            last_ms: How far it has got.
            status: Its status.
            replace: Remove the other runs of its folder first (``--overwrite`` replaced them there).
        """
        with self.db.transaction():
            if replace:
                others = "SELECT run_id FROM runs WHERE output_dir = ? AND run_id <> ?"
                for table in ("events", "intervals", "parking_states", "runs"):
                    self.db.execute(f"DELETE FROM {table} WHERE run_id IN ({others})", (run.output_dir, run.run_id))
            self.db.execute(
                "INSERT INTO runs (camera, run_id, source, output_dir, started_ms, last_ms, slots, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (camera, run_id) DO UPDATE SET "
                "started_ms = CASE WHEN excluded.started_ms < runs.started_ms "
                "THEN excluded.started_ms ELSE runs.started_ms END, "
                "last_ms = CASE WHEN excluded.last_ms > runs.last_ms THEN excluded.last_ms ELSE runs.last_ms END, "
                "slots = excluded.slots, status = excluded.status",
                (run.camera, run.run_id, run.source, run.output_dir, run.started_ms, last_ms, run.slots, status),
            )

    def write(self, run: RunInfo, batch: Batch) -> None:
        """Write ``batch`` of ``run`` in one transaction (all of it or, if it fails, none)."""
        events = [_event_row(run, seq, record, batch.origin_ms) for seq, record in batch.events]
        states = [
            (camera, run_id, seq, name, SLOT_EVENTS[event], time_ms, time_utc)
            for camera, run_id, seq, event, time_ms, time_utc, _, _, name, *_ in events
            if event in SLOT_EVENTS
        ]
        intervals = [_interval_row(run, row, batch.origin_ms) for row in batch.intervals]
        with self.db.transaction():
            if events:
                self.db.executemany(
                    "INSERT INTO events (camera, run_id, seq, event, time_ms, time_utc, timestamp_s, frame_index, "
                    "name, direction, class_name, track_id, lane, speed_kmh, record) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    events,
                )
            if states:
                self.db.executemany(
                    "INSERT INTO parking_states (camera, run_id, seq, slot, occupied, time_ms, time_utc) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    states,
                )
            if intervals:  # a bin written again (a continued run closing it) takes the later counts
                self.db.executemany(
                    "INSERT INTO intervals (camera, run_id, start_ms, end_ms, kind, name, direction, class_name, "
                    "count, covered_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (camera, run_id, kind, name, direction, class_name, start_ms) "
                    "DO UPDATE SET end_ms = excluded.end_ms, count = excluded.count, covered_s = excluded.covered_s",
                    intervals,
                )
            self.db.execute(
                "UPDATE runs SET last_ms = CASE WHEN ? > last_ms THEN ? ELSE last_ms END "
                "WHERE camera = ? AND run_id = ?",
                (batch.last_ms, batch.last_ms, run.camera, run.run_id),
            )

    def end(self, run: RunInfo, status: str) -> None:
        """Record how ``run`` ended."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE runs SET status = ? WHERE camera = ? AND run_id = ?", (status, run.camera, run.run_id)
            )

    def close(self) -> None:
        self.db.close()


def record_time_ms(record: Mapping[str, Any], origin_ms: int) -> int:
    """When ``record`` happened, in Unix milliseconds: ``origin_ms`` (the run's time 0) plus its
    :func:`~pipeline.analytics.events.happened_s` (a line crossing's ``crossed_s``, a movement's
    ``entered_s``, else its ``timestamp_s``: the source's own clock); for a record without one (a
    connection event), its ``time_utc`` (when it was written), else now.

    Example:
        >>> record_time_ms({"timestamp_s": 1.5, "time_utc": "1970-01-01T00:00:09Z"}, 1_000_000)
        1001500
        >>> record_time_ms({"event": "stream_reconnected", "time_utc": "1970-01-01T00:00:02Z"}, 0)
        2000
    """
    timestamp_s = happened_s(record)
    if timestamp_s is not None:
        return origin_ms + round(timestamp_s * 1000)
    stated = record.get("time_utc")
    if isinstance(stated, str) and (epoch_s := parse_time(stated.replace("Z", "+00:00"))) is not None:
        return round(epoch_s * 1000)
    return now_ms()


def _event_row(run: RunInfo, seq: int, record: Mapping[str, Any], origin_ms: int) -> tuple[Any, ...]:
    time_ms = record_time_ms(record, origin_ms)
    name = next((record[key] for key in NAME_FIELDS if record.get(key) is not None), None)
    return (
        run.camera,
        str(record.get("run_id") or run.run_id),
        int(record.get("seq") or seq),
        str(record.get("event", "")),
        time_ms,
        iso_utc(time_ms),
        record.get("timestamp_s"),
        record.get("frame_index"),
        name,
        record.get("direction"),
        record.get("class_name"),
        record.get("track_id"),
        record.get("lane"),
        record.get("speed_kmh"),
        json.dumps(record, separators=(",", ":")),
    )


def label_ms(label: str, origin_ms: int) -> int:
    """An ``intervals.csv`` bin label in Unix milliseconds: an ISO time, or seconds from the run's start.

    Example:
        >>> label_ms("1970-01-01T00:15:00Z", 0), label_ms("900.0", 60_000)
        (900000, 960000)
    """
    try:
        return origin_ms + round(float(label) * 1000)
    except ValueError:
        epoch_s = parse_time(label.replace("Z", "+00:00"))
        if epoch_s is None:
            raise ValueError(f"not a bin label: {label!r}") from None
        return round(epoch_s * 1000)


def _interval_row(run: RunInfo, row: Mapping[str, Any], origin_ms: int) -> tuple[Any, ...]:
    return (
        run.camera,
        str(row.get("run_id") or run.run_id),
        label_ms(str(row["interval_start"]), origin_ms),
        label_ms(str(row["interval_end"]), origin_ms),
        row["kind"],
        row["name"],
        row["direction"] or "",
        row["class_name"],
        int(row["count"]),
        float(row["covered_s"]),
    )
