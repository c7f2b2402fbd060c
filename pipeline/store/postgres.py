"""The PostgreSQL backend (``--store postgresql://user@host/db``), through psycopg 3.

psycopg is an optional dependency: ``pip install 'vpipe[postgres]'``. A password is best kept out
of the URL (``PGPASSWORD`` or ``~/.pgpass``, which libpq reads); one in the URL is never printed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pipeline.errors import OutputError
from pipeline.io.urls import mask_credentials

CONNECT_TIMEOUT_S = 10
SCHEMA_LOCK_KEY = 0x7670_6970  # "vpip": the advisory lock every vpipe migration takes


class PostgresDatabase:
    """A store in a PostgreSQL database.

    Args:
        url: ``postgresql://[user[:password]@]host[:port]/database``.

    Raises:
        OutputError: psycopg is not installed, or the server cannot be reached or refuses the login.
    """

    def __init__(self, url: str) -> None:
        self.target = mask_credentials(url)
        try:
            import psycopg
        except ImportError:
            raise OutputError(
                f"the store {self.target} needs psycopg: pip install 'vpipe[postgres]' (or psycopg[binary])"
            ) from None
        self._psycopg = psycopg
        with self._errors("cannot open"):
            self._connection = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)

    @contextmanager
    def _errors(self, doing: str = "cannot use") -> Iterator[None]:
        try:
            yield
        except self._psycopg.Error as exc:
            reason = mask_credentials(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            raise OutputError(f"{doing} the store {self.target}: {reason}") from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._errors(), self._connection.transaction():
            yield

    def lock_schema(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK_KEY,))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._errors():
            cursor = self._connection.execute(_placeholders(sql), params)
            return cursor.fetchall() if cursor.description is not None else []

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._errors(), self._connection.cursor() as cursor:
            cursor.executemany(_placeholders(sql), list(rows))

    def close(self) -> None:
        self._connection.close()


def _placeholders(sql: str) -> str:
    """The store's SQL (``?`` parameters, as SQLite's) in psycopg's style (``%s``); the store's SQL has
    no ``?`` or ``%`` of its own."""
    return sql.replace("?", "%s")
