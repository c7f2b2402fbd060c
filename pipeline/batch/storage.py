"""Where a batch reads and writes: local paths, or any URL ``fsspec`` opens (``s3://``, ``gs://``...).

Local paths are used as they are. A URL (anything with ``://``, ``file://`` included) goes
through ``fsspec``: a worker copies its input to a local temporary file (PyAV and the pipeline
need a seekable local file), writes the item's outputs to a local temporary folder, and uploads
them when the item ends. ``fsspec`` and the filesystem's package (``s3fs``, ``gcsfs``) are needed
only for URLs.

Example:
    >>> video_folder("cam1/2024-05-01.mp4")
    'cam1/2024-05-01'
    >>> glob_root("archive/**/*.mp4")
    'archive'
"""

from __future__ import annotations

import glob
import os
import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.errors import PipelineError, SourceError

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".flv", ".wmv"}
)
"""What a folder given as the pattern is searched for (a glob matches whatever it says)."""


def is_url(location: str) -> bool:
    """Whether ``location`` is a URL for ``fsspec`` rather than a local path."""
    return "://" in location


def _filesystem(url: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path inside it)`` for a URL, with a one-line error if it cannot be opened."""
    try:
        import fsspec
    except ImportError:
        raise PipelineError(f"{url}: URLs need fsspec: pip install fsspec (and s3fs or gcsfs)") from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        protocol = url.split("://", 1)[0]
        raise PipelineError(f"{url}: no filesystem for '{protocol}://' ({exc}); install its fsspec package") from None


def glob_root(pattern: str) -> str:
    """The folder a glob pattern starts from: its leading components without wildcards."""
    parts = PurePosixPath(pattern.replace(os.sep, "/")).parts
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    else:  # no wildcard: a single file, whose folder is the root
        fixed = fixed[:-1]
    return str(PurePosixPath(*fixed)) if fixed else "."


def video_folder(relative: str) -> str:
    """The output folder of a video, relative to the batch output: its relative path minus the suffix."""
    path = PurePosixPath(relative)
    return str(path.with_suffix("")) if path.suffix else str(path)


@dataclass(frozen=True)
class InputFile:
    """One input video found by the pattern.

    Attributes:
        url: Absolute local path or URL, as workers open it.
        relative: Path below the pattern's root, with ``/`` separators (names its output folder).
        size: Size in bytes.
        mtime: Modification time as the filesystem reports it (seconds, or an object store's timestamp).
    """

    url: str
    relative: str
    size: int
    mtime: float | str

    @property
    def identity(self) -> dict[str, Any]:
        """What must be unchanged for a finished result to count on a rerun."""
        return {"size": self.size, "mtime": self.mtime}


def list_inputs(pattern: str, exclude: str | None = None) -> list[InputFile]:
    """Find the videos of a batch: a glob (``**`` recurses), a single file, or a folder (all videos below it).

    Args:
        pattern: Local glob/path, or a URL glob/path.
        exclude: A folder whose files are never inputs (the batch's output folder).

    Returns:
        Inputs sorted by relative path.

    Raises:
        SourceError: Nothing matches.
    """
    found = _list_urls(pattern, exclude) if is_url(pattern) else _list_local(pattern, exclude)
    if not found:
        raise SourceError(f"{pattern}: no files match")
    return sorted(found, key=lambda item: item.relative)


def _list_local(pattern: str, exclude: str | None) -> list[InputFile]:
    path = Path(pattern)
    if path.is_dir():
        root = path
        matches = [p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES]
    else:
        root = Path(glob_root(pattern))
        matches = [Path(p) for p in glob.glob(pattern, recursive=True)]
    excluded = Path(exclude).resolve() if exclude and not is_url(exclude) else None
    inputs = []
    for match in matches:
        resolved = match.resolve()
        if not resolved.is_file() or (excluded is not None and resolved.is_relative_to(excluded)):
            continue
        stat = resolved.stat()
        relative = match.absolute().relative_to(root.absolute()).as_posix()
        inputs.append(InputFile(str(resolved), relative, stat.st_size, stat.st_mtime))
    return inputs


def _list_urls(pattern: str, exclude: str | None) -> list[InputFile]:
    fs, path = _filesystem(pattern)
    if not glob.has_magic(path) and fs.isdir(path):
        root = path.rstrip("/")
        matches = {p: info for p, info in fs.find(root, detail=True).items() if _suffix(p) in VIDEO_SUFFIXES}
    else:
        root = glob_root(path)
        matches = fs.glob(path, detail=True)
    excluded = _filesystem(exclude)[1].rstrip("/") + "/" if exclude and is_url(exclude) else None
    inputs = []
    for match, info in matches.items():
        if info.get("type") != "file" or (excluded is not None and match.startswith(excluded)):
            continue
        relative = posixpath.relpath(match, root) if root != "." else match
        inputs.append(InputFile(fs.unstrip_protocol(match), relative, int(info.get("size") or 0), _modified(info)))
    return inputs


def _suffix(path: str) -> str:
    return PurePosixPath(path).suffix.lower()


def _modified(info: dict[str, Any]) -> float | str:
    """A file's modification time from an ``fsspec`` info dict (its keys differ per filesystem)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created", "ETag", "etag"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float | str) and value != "":
            return value
    return ""


@contextmanager
def local_input(url: str) -> Iterator[str]:
    """A local path to read ``url`` from: the path itself, or a temporary copy of a URL's file."""
    if not is_url(url):
        yield url
        return
    fs, path = _filesystem(url)
    with tempfile.TemporaryDirectory(prefix="vpipe-in-") as scratch:
        local = str(Path(scratch) / PurePosixPath(path).name)
        fs.get_file(path, local)
        yield local


@contextmanager
def local_output(url: str) -> Iterator[Path]:
    """A local folder to write an item's outputs into; for a URL, uploaded when the block ends."""
    if not is_url(url):
        Path(url).mkdir(parents=True, exist_ok=True)
        yield Path(url)
        return
    with tempfile.TemporaryDirectory(prefix="vpipe-out-") as scratch:
        try:
            yield Path(scratch)
        finally:  # outputs of a failed item are valid up to where it stopped: upload them too
            upload_folder(Path(scratch), url)


def upload_folder(local: Path, url: str) -> None:
    """Copy every file below ``local`` to the same relative path below ``url``."""
    fs, root = _filesystem(url)
    for file in sorted(p for p in local.rglob("*") if p.is_file()):
        target = posixpath.join(root, file.relative_to(local).as_posix())
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        fs.put_file(str(file), target)


class OutputFolder:
    """The batch's output folder (local or URL): small text files the driver reads and writes.

    Args:
        location: Local path or URL.
    """

    def __init__(self, location: str) -> None:
        self.remote = is_url(location)
        self.location = location.rstrip("/") if self.remote else str(Path(location).absolute())
        self._fs, self._root = _filesystem(self.location) if self.remote else (None, self.location)

    def join(self, relative: str) -> str:
        """The local path or URL of ``relative`` (``/``-separated) inside the folder."""
        return f"{self.location}/{relative}" if self.remote else str(Path(self.location, relative))

    def exists(self, relative: str) -> bool:
        if self.remote:
            return bool(self._fs.exists(posixpath.join(self._root, relative)))
        return Path(self.location, relative).exists()

    def read_text(self, relative: str) -> str | None:
        """A file's text, or None if it does not exist."""
        if self.remote:
            path = posixpath.join(self._root, relative)
            return self._fs.cat_file(path).decode("utf-8") if self._fs.exists(path) else None
        path = Path(self.location, relative)
        return path.read_text(encoding="utf-8") if path.exists() else None

    def write_text(self, relative: str, text: str) -> None:
        """Replace a file's contents; locally via a temporary file, so readers never see half a file."""
        if self.remote:
            path = posixpath.join(self._root, relative)
            self._fs.makedirs(posixpath.dirname(path), exist_ok=True)
            self._fs.pipe_file(path, text.encode("utf-8"))
            return
        path = Path(self.location, relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
