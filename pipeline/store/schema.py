"""The store's tables, as ordered migrations, and :func:`migrate`, which brings a store up to date.

``schema_version`` holds one row per migration applied. A store is migrated when a writer opens it,
each migration in its own transaction with every other writer held off; a store made by a newer
vpipe (a version this one does not know) is refused rather than written. Times are Unix
milliseconds (``*_ms``, what queries bin on) with ISO 8601 UTC beside them for people. The types
are ones both SQLite and PostgreSQL know. docs/store.md describes every column.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.errors import OutputError
from pipeline.store.database import Database

MIGRATIONS: list[tuple[str, ...]] = [
    # 1: runs, events, interval rows, parking states.
    (
        """CREATE TABLE runs (
            camera TEXT NOT NULL,
            run_id TEXT NOT NULL,
            source TEXT NOT NULL,
            output_dir TEXT NOT NULL,
            started_ms BIGINT NOT NULL,
            last_ms BIGINT NOT NULL,
            slots INTEGER,
            status TEXT NOT NULL,
            PRIMARY KEY (camera, run_id)
        )""",
        """CREATE TABLE events (
            camera TEXT NOT NULL,
            run_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            event TEXT NOT NULL,
            time_ms BIGINT NOT NULL,
            time_utc TEXT NOT NULL,
            timestamp_s DOUBLE PRECISION,
            frame_index BIGINT,
            name TEXT,
            direction TEXT,
            class_name TEXT,
            track_id BIGINT,
            lane TEXT,
            speed_kmh DOUBLE PRECISION,
            record TEXT NOT NULL,
            PRIMARY KEY (camera, run_id, seq)
        )""",
        "CREATE INDEX events_by_time ON events (time_ms, camera)",
        """CREATE TABLE intervals (
            camera TEXT NOT NULL,
            run_id TEXT NOT NULL,
            start_ms BIGINT NOT NULL,
            end_ms BIGINT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            direction TEXT NOT NULL,
            class_name TEXT NOT NULL,
            count BIGINT NOT NULL,
            covered_s DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (camera, run_id, kind, name, direction, class_name, start_ms)
        )""",
        "CREATE INDEX intervals_by_time ON intervals (start_ms, camera)",
        """CREATE TABLE parking_states (
            camera TEXT NOT NULL,
            run_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            slot TEXT NOT NULL,
            occupied SMALLINT NOT NULL,
            time_ms BIGINT NOT NULL,
            time_utc TEXT NOT NULL,
            PRIMARY KEY (camera, run_id, seq)
        )""",
    ),
]
"""Migration ``n`` (1-based) is ``MIGRATIONS[n - 1]``: its statements, run in one transaction. Append only."""

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: Database) -> int:
    """The version of the store's schema.

    Raises:
        OutputError: The database has no ``schema_version`` table: it is not a vpipe store.
    """
    try:
        rows = db.execute("SELECT MAX(version) FROM schema_version")
    except OutputError:
        raise OutputError(f"{db.target} is not a vpipe store (it has no schema_version table)") from None
    return int(rows[0][0] or 0)


def check_version(db: Database, version: int) -> None:
    """Refuse a store made by a newer vpipe.

    Raises:
        OutputError: ``version`` is newer than :data:`SCHEMA_VERSION`.
    """
    if version > SCHEMA_VERSION:
        raise OutputError(
            f"the store {db.target} has schema version {version}, newer than this vpipe's {SCHEMA_VERSION}: "
            "upgrade vpipe to write or read it"
        )


def migrate(db: Database) -> None:
    """Apply the migrations the store has not had yet, in order, each in its own transaction.

    Raises:
        OutputError: The store is newer than this vpipe, or a migration cannot be written.
    """
    with db.transaction():
        db.lock_schema()
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_utc TEXT NOT NULL)")
    while True:
        with db.transaction():
            db.lock_schema()
            version = schema_version(db)  # read under the lock: another writer may have migrated meanwhile
            check_version(db, version)
            if version == SCHEMA_VERSION:
                return
            for statement in MIGRATIONS[version]:
                db.execute(statement)
            applied = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            db.execute("INSERT INTO schema_version (version, applied_utc) VALUES (?, ?)", (version + 1, applied))
