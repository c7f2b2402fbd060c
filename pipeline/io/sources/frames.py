"""The packet that flows from a source to the sinks, and what every frame source provides."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

TimedImage = tuple[np.ndarray, float | None]
"""A BGR image and its stream time in seconds (None when the stream has no clock)."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: the packet that flows from the source to the sinks.

    Attributes:
        image: BGR pixels, shape (height, width, 3), uint8.
        frame_index: 0-based position in the source.
        timestamp_s: Presentation time in seconds from the source's first frame.
    """

    image: np.ndarray
    frame_index: int
    timestamp_s: float


class FrameSource(ABC):
    """An opened source of frames with known size and nominal frame rate."""

    name: str
    """Short name for output folders (the file stem)."""
    width: int
    height: int
    fps: Fraction
    """Nominal frame rate; the output video uses it."""
    frame_count: int | None
    """Number of frames if the container says so, else None."""
    live: bool = False
    """A live feed (webcam, stream): read with the latest-frame policy by default, reconnects."""
    display_name: str = ""
    """How the source is shown in logs and outputs (credentials masked)."""
    frames_skipped: int = 0
    """Frames left out because they could not be read (an unreadable or mis-sized image)."""
    read_clock: bool = False
    """Frames are timed when they are read (no stream clock): read from the moment the source opens,
    or the frames that queue up meanwhile get the wrong times."""
    truncated: bool = False
    """The source ended before the end its container announced (a cut file); set once iteration ends."""

    def drain_events(self) -> list[dict[str, Any]]:
        """Connection events (disconnects, reconnects) since the last call, as JSON-ready records."""
        return []

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Yield frames in order. Raises SourceError if the source fails mid-way."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Ask an iteration running on another thread to end soon (thread-safe; a live source stops
        waiting out a reconnect backoff)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the source's resources."""


def has_clock(container: Any) -> bool:
    """Whether a PyAV container carries real presentation times: formats flagged ``no_timestamps``
    (MJPEG over HTTP, raw H.264) only number frames at an assumed rate."""
    return not container.format.flags & av.format.Flags.no_timestamps.value


def error_reason(exc: BaseException) -> str:
    """The short text of an FFmpeg or OS error (its ``strerror`` when it has one)."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def sample_every(frames: Iterable[Frame], interval_s: float) -> Iterator[Frame]:
    """The frames at least ``interval_s`` seconds of source time after the last one kept (the first
    is kept); frame indices and times stay the source's.

    Example:
        >>> image = np.zeros((1, 1, 3), np.uint8)
        >>> frames = [Frame(image, index, index / 10) for index in range(25)]
        >>> [frame.frame_index for frame in sample_every(frames, 1.0)]
        [0, 10, 20]
    """
    last_s: float | None = None
    for frame in frames:
        # A tolerance of a microsecond: timestamps from a stream clock are rounded.
        if last_s is None or frame.timestamp_s - last_s >= interval_s - 1e-6:
            last_s = frame.timestamp_s
            yield frame
