"""The SQLite backend: one file, WAL journal (readers never block the writer), each transaction
committed whole or not at all, so a killed run leaves every batch it committed."""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import OutputError

BUSY_TIMEOUT_S = 30.0
"""How long a writer waits for another (several cameras, ``vpipe import``) to finish its transaction."""


WAL_RETRY_S = 0.05
"""How often the switch to WAL is tried again while another process holds the file."""


def _switch_to_wal(connection: sqlite3.Connection, timeout_s: float) -> None:
    """Put the file in WAL mode. The switch needs the file to itself, and SQLite answers "database is
    locked" at once, without waiting out the busy timeout, while another connection holds it (as
    when several worker processes open a new store together): so it is tried again until
    ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_RETRY_S)


class SqliteDatabase:
    """A store in one SQLite file.

    Args:
        path: The file.
        create: Create it if it does not exist (else a missing file is refused).

    Raises:
        OutputError: It does not exist (and ``create`` is false), or cannot be opened as a database.
    """

    def __init__(self, path: Path, create: bool) -> None:
        self.target = str(path)
        if not create and not path.is_file():
            raise OutputError(f"no store at {path}: {'it is not a file' if path.exists() else 'it does not exist'}")
        with self._errors("cannot open"):
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: transactions are opened by transaction() only. The writer works on its own thread.
            self._connection = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            _switch_to_wal(self._connection, BUSY_TIMEOUT_S)
            # NORMAL: a commit survives the process being killed; only a power cut can lose the last ones.
            self._connection.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def _errors(self, doing: str = "cannot use") -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            # A full disk in the words the other outputs use, not SQLite's "database or disk is full".
            full = getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"
            raise OutputError(
                f"{doing} the store {self.target}: {os.strerror(errno.ENOSPC) if full else exc}"
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # IMMEDIATE: the write lock is taken at the start, so a writer waits for another instead of
        # failing at its first write when the other committed meanwhile.
        with self._errors():
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._connection.in_transaction:  # SQLite ends it itself on some errors (a full disk)
                    self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def lock_schema(self) -> None:
        """Nothing to do: :meth:`transaction` holds the file's write lock already."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._errors():
            return self._connection.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._errors():
            self._connection.executemany(sql, rows)

    def close(self) -> None:
        self._connection.close()
