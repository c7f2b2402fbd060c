"""Output folders: checked before the model loads, and one folder holds one run's outputs.

A folder can take a run's outputs when it is a folder (or can be created as one), a file can be
created in it, and its disk has at least :data:`MIN_FREE_BYTES` free. A folder that already holds a
run's outputs (:data:`RUN_OUTPUT_PATTERNS`) takes a run that continues them (the same source and
config, see :mod:`pipeline.io.outputs.run_folder`) and refuses any other (:class:`FolderTaken`) unless
overwriting is asked for; then those files, and only those, are removed before the new run writes,
so no stale file stays beside new ones. A folder a running vpipe process holds (its lock) is refused.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "run"
    >>> check_output_dir(folder)  # does not exist yet: fine, it will be created
    >>> prepare_output_dir(folder, overwrite=False)
    >>> (folder / "summary.json").write_text("{}")
    2
    >>> check_output_dir(folder, overwrite=False, identity="8d1f")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.io.outputs.folders.FolderTaken: ... holds another run's outputs (summary.json): another source ...
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from pipeline.errors import OutputError

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 16 * 2**20
"""A disk with less free space is refused up front: a minute of annotated video takes a few MB."""

RUN_OUTPUT_PATTERNS = (
    "summary.json",
    "annotated*.mp4",
    "counts*.csv",
    "events*.jsonl",
    "parking*.jsonl",
    "intervals.csv",
    "counts.png",
    "heatmap.png",
)
"""What ``vpipe run`` writes into its folder (rotated segments included: ``counts.0001.csv``)."""

_SEGMENT_FILE = re.compile(r"^(?:annotated|counts|events|parking)(?:\.(\d{4}))?\.(?:mp4|csv|jsonl)$")
"""A file of one numbered segment of a run folder (``counts.csv`` is number 0, ``counts.0003.csv`` 3)."""

LOCK_FILE = ".vpipe.lock"
"""The file a running vpipe process holds locked (``flock``) in its output folder; the kernel lets go
of the lock when the process ends, however it ends, so a killed run's lock blocks nothing."""


class FolderTaken(OutputError):
    """The output folder is another run's: it holds the outputs of another source or config, or a
    vpipe process is writing it now. Exit code 4: not bad input, and a restart will not help."""

    exit_code = 4


def lock_holder(path: Path) -> str | None:
    """Who holds the lock on folder ``path`` (its process id, as the lock file says), or None if nobody."""
    try:
        with (path / LOCK_FILE).open("rb") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two checks do not block each other
            except BlockingIOError:
                return file.read().decode(errors="replace").strip() or "?"
            fcntl.flock(file, fcntl.LOCK_UN)
    except OSError:  # no lock file: nobody ever ran here
        return None
    return None


def folder_busy(path: Path, holder: str) -> FolderTaken:
    """The error for a folder another vpipe process (``holder``, its id) is writing."""
    return FolderTaken(f"{path} is being written by another vpipe process (pid {holder}); choose another output folder")


def summary_identity(path: Path) -> str | None:
    """The ``identity`` of the run whose ``summary.json`` is in folder ``path`` (None: none, or unreadable)."""
    try:
        return json.loads((path / "summary.json").read_text(encoding="utf-8")).get("identity")
    except (OSError, ValueError, AttributeError):
        return None


def segment_number(path: Path) -> int | None:
    """The segment ``path`` belongs to, or None for a file that is no segment's.

    Example:
        >>> [segment_number(Path(name)) for name in ("counts.0003.csv", "events.jsonl", "counts.png")]
        [3, 0, None]
    """
    match = _SEGMENT_FILE.match(path.name)
    return None if match is None else int(match.group(1) or 0)


def segment_path(path: Path, index: int) -> Path:
    """``counts.csv`` for the first segment of a rotated output, then ``counts.0001.csv``, ...

    Example:
        >>> segment_path(Path("runs/a/counts.csv"), 2).name
        'counts.0002.csv'
    """
    return path if index == 0 else path.with_name(f"{path.stem}.{index:04d}{path.suffix}")


def prune_videos(folder: Path, newest: int, keep: int) -> list[Path]:
    """Delete the annotated video segments of ``folder`` older than its ``keep`` newest (``newest`` being
    the number of the one being written): ``output.keep_video``. Nothing else is touched: counts,
    events, intervals, parking logs and the store stay whole.

    Returns:
        The files deleted (one that cannot be deleted is logged and left).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("annotated.mp4", "annotated.0001.mp4", "annotated.0002.mp4", "counts.0001.csv"):
        ...     _ = (folder / name).write_bytes(b"")
        >>> [path.name for path in prune_videos(folder, newest=2, keep=2)], sorted(p.name for p in folder.iterdir())
        (['annotated.mp4'], ['annotated.0001.mp4', 'annotated.0002.mp4', 'counts.0001.csv'])
    """
    deleted = []
    for path in sorted(folder.glob("annotated*.mp4")):
        number = segment_number(path)
        if number is None or number > newest - keep:
            continue
        try:
            path.unlink()
        except OSError as exc:
            log.warning("output.keep_video: cannot delete %s: %s", path, exc.strerror or exc)
        else:
            deleted.append(path)
    return deleted


def output_error(path: str | Path, exc: OSError) -> OutputError:
    """The one-line error for an I/O error writing ``path`` (a full disk, a read-only folder)."""
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(path: str | Path, overwrite: bool = True, identity: str | None = None) -> None:
    """Check that ``path`` can take a run's outputs, without creating anything.

    Args:
        path: The output folder; it need not exist yet.
        overwrite: Whether another run's outputs in it may be replaced.
        identity: The run's :func:`~pipeline.io.outputs.run_folder.run_identity`: outputs of a run
            with the same one are continued, not refused.

    Raises:
        OutputError: It or a parent is a file, it is not writable, or its disk is (nearly) full.
        FolderTaken: A vpipe process holds it, or it holds another run's outputs (another
            ``identity``) and ``overwrite`` is false.
    """
    path = Path(path)
    existing = _nearest_existing(path.absolute())
    if not existing.is_dir():
        what = "it is" if existing == path.absolute() else f"{existing} is"
        raise OutputError(f"cannot write outputs to {path}: {what} not a folder")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".vpipe-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write outputs to {path}: {existing} is not writable ({exc.strerror})") from None
    free_bytes = shutil.disk_usage(existing).free
    if free_bytes < MIN_FREE_BYTES:
        raise OutputError(
            f"cannot write outputs to {path}: only {free_bytes / 2**20:.1f} MiB free on its disk "
            f"(at least {MIN_FREE_BYTES / 2**20:.0f} MiB needed)"
        )
    holder = lock_holder(path)
    if holder is not None:
        raise folder_busy(path, holder)
    refuse_another_run(path, overwrite, identity)


def refuse_another_run(path: Path, overwrite: bool, identity: str | None) -> None:
    """Raise :class:`FolderTaken` if folder ``path`` holds the outputs of a run other than ``identity``'s
    (any run's if ``identity`` is None) and ``overwrite`` is false."""
    found = previous_outputs(path)
    if found and not overwrite and (identity is None or summary_identity(path) != identity):
        names = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
        raise FolderTaken(
            f"{path} holds another run's outputs ({names}): another source or config; pass --overwrite to "
            "replace them (output.overwrite: true), or choose another output folder"
        )


def check_output_file(path: str | Path) -> None:
    """Check that the file ``path`` can be written (its folder as :func:`check_output_dir` does).

    Raises:
        OutputError: ``path`` is a folder or not a regular file, or its folder cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise OutputError(f"cannot write {path}: it is not a regular file")
    check_output_dir(path.parent)


def previous_outputs(path: str | Path) -> list[Path]:
    """The files of a run's outputs in folder ``path`` (none if it does not exist)."""
    path = Path(path)
    if not path.is_dir():
        return []
    return sorted({found for pattern in RUN_OUTPUT_PATTERNS for found in path.glob(pattern) if found.is_file()})


def prepare_output_dir(path: str | Path, overwrite: bool) -> None:
    """Create the folder; with ``overwrite``, remove the outputs a previous run left in it.

    Raises:
        OutputError: The folder cannot be created or a previous output cannot be removed.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        for stale in previous_outputs(path) if overwrite else []:
            stale.unlink()
    except OSError as exc:
        raise output_error(path, exc) from None
