"""``intervals.csv``: the run's line and movement counts per time bin (see
:mod:`pipeline.analytics.intervals`), written as the bins close, each row with the ``run_id`` of the
process that counted it. A run that continues a folder appends to its file; a bin that a restart
splits has rows from each process, whose counts (and ``covered_s``) add up to the bin's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import av

from pipeline.analytics import Analytics
from pipeline.analytics.events import events_of
from pipeline.analytics.intervals import COLUMNS, IntervalCounter, Key
from pipeline.config import Config, parse_time
from pipeline.config.columns import movement_name
from pipeline.durations import parse_duration
from pipeline.io.outputs.sinks import CountsCsvSink
from pipeline.io.sources.files import FrameSource, VideoFileSource
from pipeline.run.frame_pipeline import FrameResult

Frames = tuple[float, list[dict[str, Any]]]
"""A frame an earlier process wrote: its time and its events' records."""

MOVEMENT_TRAVEL_S = 60.0
"""How long a bin stays open, beyond the usual, for the movements that entered the intersection in it:
a movement is known once the vehicle reaches its exit (a later one goes to the first bin still open)."""

REPLAY_MARGIN_S = 60.0
"""A killed process's frames are counted again from this long before the end of its last bin written:
the frames before a bin's start that its covered time depends on (the outage rule's recent gaps)."""

FILE_COLUMNS = [*COLUMNS, "run_id"]
"""The columns of ``intervals.csv``: a bin's, and the run id of the process that counted it."""


def file_start_epoch_s(source: FrameSource, start_time: str | None) -> float | None:
    """Unix time of a file source's first frame: ``source.start_time`` if given, else the container's
    ``creation_time``, else None (live sources: None, the clock is read at their first frame)."""
    if start_time is not None:
        return parse_time(start_time)
    if not isinstance(source, VideoFileSource):
        return None
    try:
        with av.open(str(source.path)) as container:
            created = container.metadata.get("creation_time")
    except (av.error.FFmpegError, OSError):
        return None
    return parse_time(created.replace("Z", "+00:00")) if created else None


def interval_keys(analytics: Analytics) -> list[Key]:
    """Every line direction, movement between named approaches and crosswalk (direction): the rows of every bin."""
    keys: list[Key] = [("line", line.name, direction) for line in analytics.lines for direction in ("in", "out")]
    if analytics.movements is not None:
        keys += [("movement", movement_name(*pair), "") for pair in analytics.movements.pairs]
    for crosswalk in analytics.crosswalks:
        directions = ("in", "out") if crosswalk.polygon is None else ("",)
        keys += [("crosswalk", crosswalk.name, direction) for direction in directions]
    return keys


class IntervalsFile:
    """Feeds one source's frame results to an :class:`IntervalCounter` and appends closed bins to
    ``intervals.csv`` (written only when the run has lines or movements).

    Args:
        path: The CSV file (appended to: a new run's folder has none).
        interval_s: Bin length.
        start_epoch_s: Unix time of the first frame; None with ``live``: the clock at the first frame.
        keys: Rows of every bin.
        live: Align to the wall clock read when the first frame arrives.
        lag_s: How long a bin stays open after its end for late events.
        clock: The wall clock, Unix time in seconds.
        run_id: This process's run id, in every row it writes.
    """

    def __init__(
        self,
        path: Path,
        interval_s: float,
        start_epoch_s: float | None,
        keys: list[Key],
        live: bool,
        lag_s: float,
        clock: Callable[[], float] = time.time,
        run_id: str = "",
    ) -> None:
        self._counter = IntervalCounter(interval_s, start_epoch_s, keys, lag_s=lag_s)
        self._live = live and start_epoch_s is None
        self._clock = clock
        self.run_id = run_id
        # Nothing to count (no lines, no movements): no file.
        self._sink = CountsCsvSink(path, FILE_COLUMNS, append=True) if keys else None
        self._closed = False

    @classmethod
    def for_run(
        cls,
        out_dir: Path,
        config: Config,
        source: FrameSource,
        analytics: Analytics,
        run_id: str,
        start_epoch_s: float | None = None,
    ) -> IntervalsFile:
        """The run's ``intervals.csv`` as its config says (``output.interval``, ``source.start_time``);
        ``start_epoch_s``: a live feed's clock at the first frame of the run this one continues."""
        interval_s = float(parse_duration(config.output.interval))
        start = start_epoch_s if source.live else file_start_epoch_s(source, config.source.start_time)
        # movements to no exit come this late (forget_after_s), and a movement, binned by when it entered
        # the intersection, up to its time in the box later
        lag_s = config.tracker.track_buffer_s + 2.0 + (MOVEMENT_TRAVEL_S if analytics.movements is not None else 0.0)
        keys = interval_keys(analytics)
        return cls(out_dir / "intervals.csv", interval_s, start, keys, source.live, lag_s, run_id=run_id)

    @property
    def start_epoch_s(self) -> float | None:
        """Unix time of timestamp 0 (None: a live feed before its first frame, or a file with no start time)."""
        return self._counter.start_epoch_s

    def begin(self, timestamp_s: float) -> float | None:
        """The first frame is at ``timestamp_s``: a live feed's bins follow the clock read now (to the
        millisecond, as ``summary.json`` keeps it). Returns :attr:`start_epoch_s`."""
        if self._live:
            self._counter.start_epoch_s = round(self._clock() - timestamp_s, 3)
            self._live = False
        return self._counter.start_epoch_s

    def write(self, result: FrameResult) -> list[dict[str, Any]]:
        """Count one frame's events; append the bins that closed, and return their rows."""
        self.begin(result.frame.timestamp_s)
        if self._sink is None:
            return []
        rows = self._counter.update(result.events, result.frame.timestamp_s)
        self._write(rows, self.run_id)
        return rows

    def _write(self, rows: Iterable[Mapping[str, Any]], run_id: str) -> None:
        assert self._sink is not None
        for row in rows:
            self._sink.write({**row, "run_id": run_id})

    def continue_from(
        self, rows: list[dict[str, str]], killed: Iterable[tuple[str, Callable[[float], Iterable[Frames]]]]
    ) -> list[dict[str, Any]]:
        """Carry on from the rows earlier processes of the run wrote (their totals enter the peak hours)
        and write the bins each ``killed`` one left open, as it would have at its end, counted again
        from its frames: its run id, and its frames' times and event records from a time on (see
        :meth:`pipeline.io.outputs.run_folder.Earlier.frames`), :data:`REPLAY_MARGIN_S` before the end
        of the last bin it wrote.

        Returns:
            The rows written, each with the ``run_id`` of the process whose bin it is (for the store).
        """
        if self._sink is None:
            return []
        written_now: list[dict[str, Any]] = []
        for run_id, frames_from in killed:
            counter = self._counter
            again = IntervalCounter(counter.interval_s, counter.start_epoch_s, list(counter.keys), counter.lag_s)
            written = {row["interval_start"] for row in rows if row["run_id"] == run_id}
            from_s = max(map(self._end_s, written), default=-math.inf) - REPLAY_MARGIN_S
            recounted = [row for t, records in frames_from(from_s) for row in again.update(events_of(records), t)]
            closed = [{**row, "run_id": run_id} for row in [*recounted, *again.finish()]]
            closed = [row for row in closed if row["interval_start"] not in written]
            self._write(closed, run_id)
            rows = [*rows, *closed]
            written_now += closed
        self._counter.carry(rows)
        return written_now

    def _end_s(self, label: str) -> float:
        """The end, in the run's time, of the bin whose ``interval_start`` is ``label``."""
        start_s = float(label) if self.start_epoch_s is None else (parse_time(label) or 0.0) - self.start_epoch_s
        return start_s + self._counter.interval_s

    def close(self) -> list[dict[str, Any]]:
        """Write the bins still open and close the file; returns their rows. Idempotent."""
        if self._closed or self._sink is None:
            return []
        self._closed = True
        try:
            rows = self._counter.finish()
            self._write(rows, self.run_id)
        finally:
            self._sink.close()
        return rows

    def summary(self) -> dict[str, Any]:
        """The ``intervals`` section of ``summary.json`` (see :meth:`IntervalCounter.summary`)."""
        return self._counter.summary()
