"""A run's store sink: fed the records ``events.jsonl`` gets and the bins ``intervals.csv`` gets, it
writes them to the store one transaction per frame that has any, on its own thread, so a slow
database server does not hold up counting. A killed run leaves every frame it committed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pipeline.closing import Closing
from pipeline.concurrency import BackgroundWorker
from pipeline.errors import OutputError
from pipeline.store.writes import Batch, RunInfo, StoreWriter, record_time_ms

log = logging.getLogger(__name__)

REFRESH_S = 30.0
"""How often (wall clock) a run with nothing new still records how far it has got."""


class StoreSink(Closing):
    """One camera's run in a store.

    Args:
        target: The store: a SQLite file or a ``postgresql://`` URL.
        camera: The camera's name.
        source: The source as the summary names it (no credentials).
        output_dir: The run's folder, absolute.
        start_epoch_s: Unix time of the run's first frame if the source says (a file's start time);
            None: the wall clock when the first frame arrives.
        slots: Parking bays watched (None: no parking).
        run_id: The run's id; None: a new one.
        replace: The run replaces its folder's earlier one (``--overwrite``): the store drops that one too.
        clock: The wall clock, Unix time in seconds.

    Raises:
        OutputError: The store cannot be opened or migrated.
    """

    def __init__(
        self,
        target: str,
        camera: str,
        source: str,
        output_dir: str,
        start_epoch_s: float | None,
        slots: int | None = None,
        run_id: str | None = None,
        replace: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._writer = StoreWriter(target)  # here, not on the thread: a store that cannot be opened stops the start
        self.target = self._writer.target
        self._run = RunInfo(camera, run_id or uuid.uuid4().hex, source, output_dir, 0, slots)
        self._start_epoch_s = start_epoch_s
        self._clock = clock
        self._origin_ms: int | None = None  # Unix time of timestamp 0, known at the first frame
        self._last_ms = 0
        self._events: list[tuple[int, Mapping[str, Any]]] = []
        self._intervals: list[Mapping[str, Any]] = []
        self._next_seq = 1
        self._last_submit = clock()
        self._worker: BackgroundWorker[Batch] | None = BackgroundWorker(self._commit, maxsize=64)
        self._begun = False
        self._replace = replace
        self._failed = False  # a write was refused: the run is failing with that error, nothing more is written

    def _commit(self, batch: Batch) -> None:
        if not self._begun:
            self._writer.begin(self._run, batch.last_ms, replace=self._replace)
            self._begun = True
        self._writer.write(self._run, batch)

    def write(self, records: Iterable[Mapping[str, Any]], timestamp_s: float) -> None:
        """One frame's events, at ``timestamp_s`` in the run's time; commits what came since the last
        commit if anything did (or ``REFRESH_S`` has passed)."""
        if self._origin_ms is None:  # the first frame: the run's time 0 is now, or the file's start
            start_s = self._start_epoch_s if self._start_epoch_s is not None else self._clock() - timestamp_s
            self._origin_ms = self._run.started_ms = round(start_s * 1000)
        records = list(records)
        self.write_records(records)
        # A record's time is from its timestamp_s as written (rounded to 0.1 ms): the run's span must
        # hold it, or a report up to the run's end would leave out the last frame's events.
        frame_ms = [record_time_ms(record, self._origin_ms) for record in records if "timestamp_s" in record]
        self._last_ms = max(self._last_ms, self._origin_ms + round(timestamp_s * 1000), *frame_ms)
        if self._events or self._intervals or self._clock() - self._last_submit >= REFRESH_S:
            self._submit()

    def write_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Events that are not a frame's (connection events): committed with the next frame's. Each is
        stored under its own ``seq`` (the run's, which goes on across restarts), else the next one."""
        for record in records:
            seq = int(record.get("seq", self._next_seq))
            self._events.append((seq, record))
            self._next_seq = seq + 1

    def write_intervals(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Bins that closed, as ``intervals.csv`` has them: committed with the next frame's events."""
        self._intervals.extend(rows)

    def _submit(self) -> None:
        assert self._origin_ms is not None and self._worker is not None
        batch = Batch(self._origin_ms, self._last_ms, events=self._events, intervals=self._intervals)
        self._events, self._intervals = [], []
        self._last_submit = self._clock()
        if self._failed:
            return
        try:
            self._worker.submit(batch)
        except OutputError:
            self._failed = True
            raise

    def close(self) -> None:
        """Commit what is left and stop the writing thread (the connection stays open for :meth:`end`).

        Raises:
            OutputError: A batch could not be written.
        """
        if self._worker is None:
            return
        try:
            if self._origin_ms is not None and (self._events or self._intervals):
                self._submit()
        finally:
            worker, self._worker = self._worker, None
            try:
                worker.close()
            except OutputError:
                if not self._failed:  # else it is the failure the run has already reported
                    self._failed = True
                    raise

    def end(self, status: str) -> None:
        """Record the run's final status and close the store. The run's outputs are final by now, so
        a store that refuses is logged, not raised."""
        try:
            self.close()
            if self._begun and not self._failed:
                self._writer.end(self._run, status)
        except OutputError as exc:
            log.error("%s", exc)
        finally:
            self._writer.close()
