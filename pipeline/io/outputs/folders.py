"""Output folders: checked before the model loads, and one folder holds one run's outputs.

A folder can take a run's outputs when it is a folder (or can be created as one), a file can be
created in it, and its disk has at least :data:`MIN_FREE_BYTES` free. A folder that already holds a
run's outputs (:data:`RUN_OUTPUT_PATTERNS`) is refused unless overwriting is asked for; then those
files, and only those, are removed before the new run writes, so no stale file stays beside new ones.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "run"
    >>> check_output_dir(folder)  # does not exist yet: fine, it will be created
    >>> prepare_output_dir(folder, overwrite=False)
    >>> (folder / "summary.json").write_text("{}")
    2
    >>> check_output_dir(folder, overwrite=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.OutputError: ... holds another run's outputs (summary.json); pass --overwrite to replace them ...
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pipeline.errors import OutputError

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


def output_error(path: str | Path, exc: OSError) -> OutputError:
    """The one-line error for an I/O error writing ``path`` (a full disk, a read-only folder)."""
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(path: str | Path, overwrite: bool = True) -> None:
    """Check that ``path`` can take a run's outputs, without creating anything.

    Args:
        path: The output folder; it need not exist yet.
        overwrite: Whether another run's outputs in it may be replaced.

    Raises:
        OutputError: It or a parent is a file, it is not writable, its disk is (nearly) full, or it
            holds another run's outputs and ``overwrite`` is false.
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
    found = previous_outputs(path)
    if found and not overwrite:
        names = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
        raise OutputError(
            f"{path} holds another run's outputs ({names}); pass --overwrite to replace them "
            "(output.overwrite: true), or choose another output folder"
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
