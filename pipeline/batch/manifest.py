"""The batch manifest: an append-only journal of finished items, so a batch can be resumed.

``batch_manifest.jsonl`` in the output folder holds one JSON object per line: ``plan`` records
(a video's slices, so a rerun does not probe it again) and ``item`` records (an item finished,
``completed``, ``truncated`` or ``failed``, with its summary or its error). The last record of an
item wins. A record is appended and flushed the moment the driver learns an item finished, so
killing the driver loses nothing that had finished; a half-written last line (killed mid-write)
is ignored.

A result counts on a rerun only while the input's size and modification time and the run's
fingerprint (config, ``--split``, ``--overlap``) are the ones it was made with.

Example:
    >>> record = ItemRecord(id="cam1/a.mp4", video="cam1/a.mp4", part=None, status="completed",
    ...     identity={"size": 10, "mtime": 1.0}, fingerprint="f", attempts=1)
    >>> record.is_current({"size": 10, "mtime": 1.0}, "f"), record.is_current({"size": 11, "mtime": 1.0}, "f")
    (True, False)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from pipeline.batch.storage import OutputFolder

MANIFEST_NAME = "batch_manifest.jsonl"

DONE_STATUSES = ("completed", "truncated")
"""How an item ends once its input has been processed to its end: ``truncated`` is a file that ends
before the frames it announces, counted up to there (a final state of the input, which a rerun
would read the same way, not a failure of the run). A rerun skips such items."""


@dataclass(frozen=True)
class ItemRecord:
    """How one item (a video, or a slice of one) ended.

    Attributes:
        id: ``<relative path>`` for a whole video, ``<relative path>#part-NNNN`` for a slice.
        video: The video's relative path.
        part: The slice index, or None for a whole video.
        status: ``completed``, ``truncated`` (see :data:`DONE_STATUSES`) or ``failed``.
        identity: The input's size and mtime when it was processed.
        fingerprint: The run settings it was processed with.
        attempts: Attempts made in the run that wrote this record.
        error: Why it failed (one line).
        elapsed_s: Wall time of the last attempt on its worker.
        summary: The item's summary (as in its ``summary.json``) when done (completed or truncated).
        started_at: When the last attempt started on its worker (seconds since the epoch).
    """

    id: str
    video: str
    part: int | None
    status: str
    identity: dict[str, Any]
    fingerprint: str
    attempts: int
    error: str | None = None
    elapsed_s: float = 0.0
    summary: dict[str, Any] | None = None
    started_at: float | None = None

    def is_current(self, identity: dict[str, Any], fingerprint: str) -> bool:
        """Whether this record was made from the same input bytes with the same settings."""
        return self.identity == identity and self.fingerprint == fingerprint


@dataclass(frozen=True)
class PlanRecord:
    """A video's slices (see :func:`pipeline.batch.slicing.plan_slices`), cached for reruns."""

    video: str
    identity: dict[str, Any]
    fingerprint: str
    frames: int
    slices: list[dict[str, Any]] = field(default_factory=list)

    def is_current(self, identity: dict[str, Any], fingerprint: str) -> bool:
        return self.identity == identity and self.fingerprint == fingerprint


class Manifest:
    """Reads the journal of an output folder and appends to it.

    Args:
        folder: The batch's output folder.
        sync_every_s: For a URL output folder (no appends on object stores), how often the whole
            journal is rewritten; it is always written on :meth:`close`.
    """

    def __init__(self, folder: OutputFolder, sync_every_s: float = 10.0) -> None:
        self._folder = folder
        self._sync_every_s = sync_every_s
        self.items: dict[str, ItemRecord] = {}
        self.plans: dict[str, PlanRecord] = {}
        text = folder.read_text(MANIFEST_NAME) or ""
        self._lines = [line for line in text.splitlines() if self._load(line)]
        self._file: IO[str] | None = None
        self._synced_at = 0.0
        self._dirty = False
        if not folder.remote:
            path = Path(folder.join(MANIFEST_NAME))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
            if text and not text.endswith("\n"):
                self._file.write("\n")  # a line cut short by a kill: start the next record on its own line

    def _load(self, line: str) -> bool:
        try:
            record = json.loads(line)
            kind = record.pop("type")
            if kind == "item":
                item = ItemRecord(**record)
                self.items[item.id] = item
            elif kind == "plan":
                plan = PlanRecord(**record)
                self.plans[plan.video] = plan
            else:
                return False
        except (ValueError, TypeError, KeyError, AttributeError):
            return False  # a partial last line, or a record from another version
        return True

    def finished(self, item_id: str, identity: dict[str, Any], fingerprint: str) -> ItemRecord | None:
        """The item's done record (:data:`DONE_STATUSES`) if it is still valid for this input and these settings."""
        record = self.items.get(item_id)
        if record is not None and record.status in DONE_STATUSES and record.is_current(identity, fingerprint):
            return record
        return None

    def plan(self, video: str, identity: dict[str, Any], fingerprint: str) -> PlanRecord | None:
        """The video's cached slice plan if it is still valid."""
        plan = self.plans.get(video)
        return plan if plan is not None and plan.is_current(identity, fingerprint) else None

    def add(self, record: ItemRecord | PlanRecord) -> None:
        """Record an item's end or a plan, durably (flushed) for a local folder."""
        kind = "item" if isinstance(record, ItemRecord) else "plan"
        if isinstance(record, ItemRecord):
            self.items[record.id] = record
        else:
            self.plans[record.video] = record
        line = json.dumps({"type": kind, **asdict(record)}, separators=(",", ":"), default=str)
        self._lines.append(line)
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()
        else:
            self._dirty = True
            if time.monotonic() - self._synced_at >= self._sync_every_s:
                self._sync()

    def _sync(self) -> None:
        self._folder.write_text(MANIFEST_NAME, "".join(line + "\n" for line in self._lines))
        self._synced_at = time.monotonic()
        self._dirty = False

    def close(self) -> None:
        """Write what is pending and close the journal."""
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self._dirty:
            self._sync()
