"""What places each record of a run: the process that made it, when, and its number among the events.

Every record a run writes or sends (an ``events.jsonl`` line, an MQTT or webhook message,
``summary.json``) carries ``time_utc``, the wall-clock time it was made, and ``run_id``, a new id per
process start; events also carry ``seq``: 1, 2, ... in ``events.jsonl`` order, continued by a run
that continues the folder (see :mod:`pipeline.io.outputs.run_folder`), so ``(run_id, seq)`` and,
within one folder, ``seq`` alone name one event.

Example:
    >>> stamp = RecordStamp("5f0c", last_seq=41, clock=lambda: 1796655845.123)
    >>> stamp.event({"event": "line_crossing", "frame_index": 7})
    {'event': 'line_crossing', 'frame_index': 7, 'time_utc': '2026-12-07T15:04:05.123Z', 'run_id': '5f0c', 'seq': 42}
    >>> "seq" in stamp.note({"event": "counts"})
    False
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any


def new_run_id() -> str:
    """A new run id: 32 hex digits (a random UUID)."""
    return uuid.uuid4().hex


def utc_text(epoch_s: float) -> str:
    """Unix time as ISO 8601 UTC to the millisecond.

    Example:
        >>> utc_text(0.9996)
        '1970-01-01T00:00:01.000Z'
    """
    millis = round(epoch_s * 1000)
    return f"{datetime.fromtimestamp(millis // 1000, UTC):%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


class RecordStamp:
    """Stamps one run's records with ``time_utc`` and ``run_id``, and numbers its events.

    Args:
        run_id: This process's run id.
        last_seq: The last ``seq`` already used in the folder (0 for a new run).
        clock: The wall clock, Unix time in seconds.
    """

    def __init__(self, run_id: str, last_seq: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.run_id = run_id
        self.seq = last_seq
        self._clock = clock

    def note(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` with ``time_utc`` and ``run_id`` (a snapshot such as a ``counts`` message: no ``seq``)."""
        return {**record, "time_utc": utc_text(self._clock()), "run_id": self.run_id}

    def event(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` stamped and numbered: the next ``seq``."""
        self.seq += 1
        return {**self.note(record), "seq": self.seq}
