"""``intervals.csv``: the run's line and movement counts per time bin (see
:mod:`pipeline.analytics.intervals`), written as the bins close.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

from pipeline.analytics import Analytics
from pipeline.analytics.intervals import COLUMNS, IntervalCounter, Key
from pipeline.analytics.movements import movement_name
from pipeline.config import Config, parse_time
from pipeline.durations import parse_duration
from pipeline.io.outputs.sinks import CountsCsvSink
from pipeline.io.sources.files import FrameSource, VideoFileSource
from pipeline.run.frame_pipeline import FrameResult


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
    """Every line direction and movement between named approaches: the rows of every bin."""
    keys: list[Key] = [("line", line.name, direction) for line in analytics.lines for direction in ("in", "out")]
    if analytics.movements is not None:
        keys += [("movement", movement_name(*pair), "") for pair in analytics.movements.pairs]
    return keys


class IntervalsFile:
    """Feeds one source's frame results to an :class:`IntervalCounter` and appends closed bins to
    ``intervals.csv`` (written only when the run has lines or movements).

    Args:
        path: The CSV file.
        interval_s: Bin length.
        start_epoch_s: Unix time of the first frame; None with ``live``: the clock at the first frame.
        keys: Rows of every bin.
        live: Align to the wall clock read when the first frame arrives.
        lag_s: How long a bin stays open after its end for late events.
        clock: The wall clock, Unix time in seconds.
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
    ) -> None:
        self._counter = IntervalCounter(interval_s, start_epoch_s, keys, lag_s=lag_s)
        self._live = live and start_epoch_s is None
        self._clock = clock
        # Nothing to count (no lines, no movements): no file.
        self._sink = CountsCsvSink(path, COLUMNS) if keys else None
        self._closed = False

    @classmethod
    def for_run(cls, out_dir: Path, config: Config, source: FrameSource, analytics: Analytics) -> IntervalsFile:
        """The run's ``intervals.csv`` as its config says (``output.interval``, ``source.start_time``)."""
        interval_s = float(parse_duration(config.output.interval))
        start = None if source.live else file_start_epoch_s(source, config.source.start_time)
        lag_s = config.tracker.track_buffer_s + 2.0  # movements to no exit come this late (forget_after_s)
        return cls(out_dir / "intervals.csv", interval_s, start, interval_keys(analytics), source.live, lag_s)

    def write(self, result: FrameResult) -> list[dict[str, Any]]:
        """Count one frame's events; append the bins that closed, and return their rows."""
        if self._sink is None:
            return []
        if self._live:
            self._counter.start_epoch_s = self._clock() - result.frame.timestamp_s
            self._live = False
        rows = self._counter.update(result.events, result.frame.timestamp_s)
        for row in rows:
            self._sink.write(row)
        return rows

    def close(self) -> list[dict[str, Any]]:
        """Write the bins still open and close the file; returns their rows. Idempotent."""
        if self._closed or self._sink is None:
            return []
        self._closed = True
        try:
            rows = self._counter.finish()
            for row in rows:
                self._sink.write(row)
        finally:
            self._sink.close()
        return rows

    def summary(self) -> dict[str, Any]:
        """The ``intervals`` section of ``summary.json`` (see :meth:`IntervalCounter.summary`)."""
        return self._counter.summary()
