"""The store: every event, interval row, parking state and run, in SQLite (default) or PostgreSQL,
for ``vpipe report``. See docs/store.md.

- :mod:`~pipeline.store.database`: the interface both backends satisfy, and opening a target;
  :mod:`~pipeline.store.sqlite` and :mod:`~pipeline.store.postgres`, the backends.
- :mod:`~pipeline.store.schema`: the tables, as ordered migrations.
- :mod:`~pipeline.store.writes`: writing runs, events and interval rows, each once.
- :mod:`~pipeline.store.sink`: a run's sink, fed as the run goes.
- :mod:`~pipeline.store.folders`: loading a run folder that was not stored as it ran (``vpipe import``).
- :mod:`~pipeline.store.queries`: the counts and parking occupancy per interval that ``vpipe report`` gives.
"""

from __future__ import annotations

from pathlib import Path

STORE_FILE = "vpipe.sqlite"
"""The store's file name in the output folder, where none is given."""

NO_STORE = "none"


def store_target(setting: str | None, folder: Path) -> str | None:
    """Where a run's store is: ``output.store`` (``--store``) or, unset, :data:`STORE_FILE` in
    ``folder`` (the output folder); None for ``none``.

    Example:
        >>> store_target(None, Path("runs/a")), store_target("none", Path("runs/a"))
        ('runs/a/vpipe.sqlite', None)
    """
    if setting is None:
        return str(folder / STORE_FILE)
    return None if setting.strip().lower() == NO_STORE else setting


def check_store(setting: str | None) -> None:
    """Open (creating and migrating) a store given by name, before anything else is written: a
    server that cannot be reached, a file that is not a store. The default one, in the output
    folder, is checked with the folder.

    Raises:
        OutputError: It cannot be opened or written, or was made by a newer vpipe.
    """
    target = store_target(setting, Path())
    if setting is None or target is None:
        return
    from pipeline.store.writes import StoreWriter

    StoreWriter(target).close()
