"""The webhook's undelivered records: a bounded FIFO of JSON lines in one file on disk, which outlives
the process: a queue an earlier run left in the folder is delivered first."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class DiskQueue:
    """A FIFO of JSON records in one append-only file, consumed from an offset; the file is
    emptied whenever the consumer has caught up, and holds at most ``max_bytes``. Once a record did
    not fit, later ones are dropped too until the queue is at most half full, so what it holds is a
    run of consecutive records and each outage leaves one gap, not a smaller record here and there
    after a larger one was dropped. The records a file
    already holds (an earlier run's, not delivered) come first. The offset is kept in memory only: a
    process killed while catching up leaves records it delivered since it last caught up, to be
    delivered again (at least once).

    Example:
        >>> import tempfile
        >>> queue = DiskQueue(Path(tempfile.mkdtemp()) / "q.jsonl", max_bytes=1000)
        >>> queue.put({"a": 1}); queue.put({"a": 2})
        True
        True
        >>> queue.peek(), queue.pop(), queue.peek(), queue.pop(), queue.peek()
        ({'a': 1}, None, {'a': 2}, None, None)
        >>> queue.put({"a": 3}), queue.put({"a": 4})
        (True, True)
        >>> queue.pop(); queue.close()  # what is left on close is what was not delivered
        >>> queue.path.read_text()
        '{"a":4}\\n'
        >>> DiskQueue(queue.path, max_bytes=1000).peek()  # the next run's queue starts with it
        {'a': 4}
        >>> small = DiskQueue(Path(tempfile.mkdtemp()) / "q.jsonl", max_bytes=26)  # 8 bytes a record
        >>> [small.put(record) for record in ({"a": 1}, {"a": 2}, {"a": "longer"}, {"a": 4})]  # 4 would fit
        [True, True, False, False]
        >>> small.pop(); small.put({"a": 5}), small.dropped  # 8 bytes held of 26: room again
        (True, 2)
    """

    def __init__(self, path: Path, max_bytes: float) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.dropped = 0
        self._overflowing = False
        """A record was dropped and the queue has not drained to half full since."""
        self._lock = threading.Lock()
        self._offset = 0
        self._size = 0
        self._count = 0
        self._file: Any = None
        if path.is_file() and path.stat().st_size:
            self._file = path.open("r+b")
            held = self._file.read()
            held = held[: held.rfind(b"\n") + 1]  # a line a killed process cut short is no record
            self._file.truncate(len(held))
            self._size, self._count = len(held), held.count(b"\n")

    def put(self, record: Mapping[str, Any]) -> bool:
        """Append ``record``; False (and counted as dropped) if the queue is full."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            held = self._size - self._offset
            self._overflowing = self._overflowing and held > self.max_bytes / 2
            if self._overflowing or held + len(line) > self.max_bytes:
                self._overflowing = True
                self.dropped += 1
                return False
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("w+b")
            self._file.seek(self._size)
            self._file.write(line)
            self._file.flush()
            self._size += len(line)
            self._count += 1
        return True

    def peek(self) -> dict[str, Any] | None:
        """The oldest record not yet popped, or None."""
        with self._lock:
            if self._file is None or self._offset >= self._size:
                return None
            self._file.seek(self._offset)
            return json.loads(self._file.readline())

    def pop(self) -> None:
        """Drop the oldest record (it was delivered)."""
        with self._lock:
            self._file.seek(self._offset)
            self._offset += len(self._file.readline())
            self._count -= 1
            if self._offset >= self._size:  # caught up: start the file again
                self._file.truncate(0)
                self._offset = self._size = 0

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Close the file, leaving in it only the records not yet popped."""
        with self._lock:
            if self._file is None:
                return
            if self._offset:
                self._file.seek(self._offset)
                left = self._file.read()
                self._file.seek(0)
                self._file.write(left)
                self._file.truncate(len(left))
            self._file.close()
            self._file = None
