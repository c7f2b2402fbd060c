"""The one small interface both store backends satisfy (:class:`Database`), and how a store's
target (a SQLite file or a ``postgresql://`` URL) is told apart and opened.

Every query of the store is written once, in SQL both SQLite and PostgreSQL accept, with ``?``
for parameters; a backend only connects, runs statements and groups them into transactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Database(Protocol):
    """A connection to one store.

    Attributes:
        target: The store, as a user may see it in a message (a path, or a URL with its password masked).
    """

    target: str

    def transaction(self) -> AbstractContextManager[None]:
        """Statements run inside are committed together when the block ends, or not at all."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for a statement that returns none)."""

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""

    def lock_schema(self) -> None:
        """Inside a transaction: hold off every other writer until it ends (migrations run one at a time)."""

    def close(self) -> None: ...


def is_postgres(target: str) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a SQLite file.

    Example:
        >>> is_postgres("postgresql://vpipe@db/counts"), is_postgres("runs/a/vpipe.sqlite")
        (True, False)
    """
    return target.startswith(POSTGRES_SCHEMES)


def connect(target: str, create: bool) -> Database:
    """Open the store at ``target``.

    Args:
        target: A SQLite file or a ``postgresql://`` URL.
        create: Create a SQLite file that does not exist yet (else it is refused as missing).

    Raises:
        OutputError: The store cannot be opened (missing, unreadable, not a database, no server).
    """
    if is_postgres(target):
        from pipeline.store.postgres import PostgresDatabase

        return PostgresDatabase(target)
    from pipeline.store.sqlite import SqliteDatabase

    return SqliteDatabase(Path(target), create=create)
