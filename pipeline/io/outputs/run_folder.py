"""An output folder claimed by one run: locked while it writes, and continued when it holds an
earlier run of the same source and config.

The rule: ``vpipe run`` into a folder that holds the outputs of a run with the same
:func:`run_identity` (the source and every setting but where and how long to run) continues that
run, whether it ended, was stopped or was killed: its files are kept and the new process writes the
next numbered ones beside them (``counts.0002.csv``, ...), its counts carry on from the earlier
``events.jsonl`` files (the record of every count) and its event numbers from the last one. A folder
of another run is refused (:class:`~pipeline.io.outputs.folders.FolderTaken`, exit code 4), and so is
one that another vpipe process holds: its lock is an ``flock`` on :data:`~pipeline.io.outputs.folders.LOCK_FILE`,
which the kernel releases when that process ends, ``kill -9`` included.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "run"
    >>> claim = RunFolder(folder, identity="8d1f", overwrite=False)
    >>> claim.earlier is None, lock_holder(folder) == str(os.getpid())
    (True, True)
    >>> claim.close(); lock_holder(folder) is None
    True
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.closing import Closing
from pipeline.config import Config
from pipeline.io.outputs.folders import (
    LOCK_FILE,
    folder_busy,
    lock_holder,
    output_error,
    prepare_output_dir,
    refuse_another_run,
    segment_number,
    segment_path,
)
from pipeline.io.sources.files import FrameSource

RUN_CONTROL_KEYS = (
    "source.path",
    "source.max_frames",
    "source.workers",
    "source.shared_inference",
    "output.dir",
    "output.overwrite",
    "output.keep_video",
    "flags",
)
"""Settings that say where and how long a run goes, not what it counts: a run continues across them."""

TAIL_BYTES = 1 << 16
"""How much of a file's end is read for its last line (a record is far shorter)."""


def run_identity(config: Config, source: FrameSource) -> str:
    """What a run folder's outputs are of: the source (as shown, credentials masked) and every setting
    but :data:`RUN_CONTROL_KEYS` (``config``'s geometry in the source's pixels)."""
    return config.digest(RUN_CONTROL_KEYS, {"source": source.display_name})


def complete_lines(path: Path) -> Iterator[str]:
    """The lines of ``path`` that were written whole (a line a killed process cut short is left out)."""
    with path.open(encoding="utf-8") as file:
        for line in file:
            if line.endswith("\n"):
                yield line


def last_line(path: Path) -> str | None:
    """The last whole line of ``path`` (None if it has none): read from its end, however long it is."""
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - TAIL_BYTES))
        lines = file.read().decode("utf-8", errors="replace").split("\n")[:-1]  # after the last newline: cut short
    return lines[-1] if lines else None


@dataclass
class Earlier:
    """What an earlier run of the same source and config left in its folder, to continue it.

    Attributes:
        folder: The run folder.
        summary: Its ``summary.json`` as the earlier process last wrote it (``running``: it was killed).
        next_file: The number of the first segment no file has yet.
    """

    folder: Path
    summary: dict[str, Any]
    next_file: int

    @property
    def killed(self) -> bool:
        """Whether the earlier process ended without finishing its outputs (``kill -9``, a crash)."""
        return self.summary.get("status") == "running"

    def interval_rows(self) -> list[dict[str, str]]:
        """The rows of ``intervals.csv`` (none if there is no such file)."""
        path = self.folder / "intervals.csv"
        return list(csv.DictReader(complete_lines(path))) if path.exists() else []

    def events(self, first_file: int = 0) -> Iterator[dict[str, Any]]:
        """The records of every ``events.jsonl`` from segment ``first_file`` on, in order."""
        for number in range(first_file, self.next_file):
            path = segment_path(self.folder / "events.jsonl", number)
            if path.exists():
                yield from map(json.loads, complete_lines(path))

    def frames(
        self, first_file: int, end_file: int, from_s: float = -math.inf
    ) -> Iterator[tuple[float, list[dict[str, Any]]]]:
        """Each frame written in segments ``first_file`` to ``end_file`` (not included) at ``from_s`` or
        later (a ``counts.csv`` row): its time and the records ``events.jsonl`` has for it. A file whose
        last frame is earlier is not read."""
        for number in range(first_file, end_file):
            counts, events = (segment_path(self.folder / name, number) for name in ("counts.csv", "events.jsonl"))
            last = last_line(counts) if counts.exists() else None
            if last is None or last.startswith("frame_index,") or float(last.split(",")[1]) < from_s:
                continue
            records = map(json.loads, complete_lines(events)) if events.exists() else iter(())
            pending = next(records, None)
            rows = complete_lines(counts)
            next(rows)  # the header: frame_index,timestamp_s,...
            for row in rows:
                frame_index, timestamp_s = row.split(",", 2)[:2]
                batch = []
                while pending is not None and pending["frame_index"] <= int(frame_index):
                    batch.append(pending)
                    pending = next(records, None)
                if float(timestamp_s) >= from_s:
                    yield float(timestamp_s), batch

    def first_and_last_frame(
        self, first_file: int, end_file: int
    ) -> tuple[tuple[int, float], tuple[int, float]] | None:
        """``(frame_index, timestamp_s)`` of the first and the last frame written in segments
        ``first_file`` to ``end_file`` (not included); None if they hold none."""
        frames = []
        for number in range(first_file, end_file):  # each file's first row and its last (read from the end)
            path = segment_path(self.folder / "counts.csv", number)
            if not path.exists():
                continue
            with path.open(encoding="utf-8") as file:
                file.readline()  # the header
                first = file.readline()
            last = last_line(path)
            if first.endswith("\n") and last is not None:
                frames += [(int(row[0]), float(row[1])) for row in csv.reader([first, last])]
        return (frames[0], frames[-1]) if frames else None

    def slots_left_open(self, first_file: int, end_file: int, frame_s: float) -> list[dict[str, Any]]:
        """The parking occupancy intervals a killed process (segments ``first_file`` to ``end_file``) left
        open, as ``parking.jsonl`` has them, closed as a run's end closes them (``ongoing``, at the end
        of its last frame, ``frame_s`` long): each bay occupied then, from its ``slot_occupied`` or,
        occupied before the process began, from its first frame."""
        bounds = self.first_and_last_frame(first_file, end_file)
        if bounds is None:
            return []
        (first_frame, first_s), (last_frame, last_s) = bounds
        last_s += frame_s
        since: dict[str, tuple[int, float]] = {}
        for number in range(end_file):
            path = segment_path(self.folder / "events.jsonl", number)
            for record in map(json.loads, complete_lines(path)) if path.exists() else ():
                if record.get("event") == "slot_occupied":
                    since[record["slot"]] = (int(record["frame_index"]), float(record["timestamp_s"]))
                elif record.get("event") == "slot_free":
                    since.pop(record["slot"], None)
        intervals = []
        for slot, (start_frame, start_s) in since.items():
            if start_s < first_s:
                start_frame, start_s = first_frame, first_s
            intervals.append(
                {"slot": slot, "start_frame": start_frame, "start_s": round(start_s, 4), "end_frame": last_frame}
                | {"end_s": round(last_s, 4), "duration_s": round(last_s - start_s, 4), "ongoing": True}
            )
        return intervals

    def _last(self, name: str, header: bool) -> str | None:
        """The last record of the newest file ``name`` that has one (``header``: a CSV's first line is none)."""
        for number in reversed(range(self.next_file)):
            path = segment_path(self.folder / name, number)
            line = last_line(path) if path.exists() else None
            if line and header:
                with path.open(encoding="utf-8") as file:
                    line = None if file.readline().rstrip("\n") == line else line
            if line:
                return line
        return None

    def last_seq(self) -> int:
        """The ``seq`` of the last event written (0: none)."""
        line = self._last("events.jsonl", header=False)
        return json.loads(line).get("seq", 0) if line else 0

    def last_frame(self) -> tuple[int, float] | None:
        """``frame_index`` and ``timestamp_s`` of the last frame written (None: none)."""
        line = self._last("counts.csv", header=True)
        if line is None:
            return None
        frame_index, timestamp_s = next(csv.reader([line]))[:2]
        return int(frame_index), float(timestamp_s)


class RunFolder(Closing):
    """Claims ``folder`` for this process: creates it, locks it, and either continues the earlier run
    of the same ``identity`` in it (:attr:`earlier`) or, with ``overwrite``, removes its outputs.

    Args:
        folder: The output folder.
        identity: This run's :func:`run_identity`.
        overwrite: Replace an earlier run's outputs instead of continuing or refusing.

    Raises:
        FolderTaken: Another vpipe process holds the folder, or it holds another run's outputs.
        OutputError: The folder cannot be created or locked, or an old output cannot be removed.
    """

    def __init__(self, folder: Path, identity: str, overwrite: bool) -> None:
        self.path = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._lock = (folder / LOCK_FILE).open("a+b")
        except OSError as exc:
            raise output_error(folder, exc) from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock.close()
            if isinstance(exc, BlockingIOError):
                raise folder_busy(folder, lock_holder(folder) or "?") from None
            raise output_error(folder / LOCK_FILE, exc) from None  # a file system without locks
        try:
            self._lock.truncate(0)
            self._lock.write(str(os.getpid()).encode())
            self._lock.flush()
            refuse_another_run(folder, overwrite, identity)  # it may have changed since it was checked
            self.earlier = None if overwrite else self._earlier()
            prepare_output_dir(folder, overwrite)
        except OSError as exc:
            self.close()
            raise output_error(folder, exc) from None
        except BaseException:
            self.close()
            raise

    def _earlier(self) -> Earlier | None:
        numbers = [n for path in self.path.iterdir() if (n := segment_number(path)) is not None]
        try:
            summary = json.loads((self.path / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # nothing written yet (check_output_dir refuses other runs' outputs)
        return Earlier(self.path, summary, max(numbers, default=-1) + 1)

    def close(self) -> None:
        """Let go of the lock (the process's end does too). Idempotent."""
        self._lock.close()
