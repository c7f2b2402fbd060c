"""The latest annotated frame and counts of each source, shared by the pipeline (which publishes)
and the clients of a live view (which read them), under one condition variable.

Publishing only swaps a reference: a slow client never slows the pipeline, it just sees fewer
frames. Frames are JPEG-encoded only when a client asks, at most ``max_fps`` times per second per
source however many clients watch.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from pipeline.config.columns import Column


@dataclass(eq=False)
class _Latest:
    """The latest frame of one source and its cached JPEG (guarded by the view's lock)."""

    image: np.ndarray
    frame_index: int
    timestamp_s: float
    counts: dict[str, float | int]
    published_at: float  # time.monotonic()
    frames: int = 1  # publishes so far; also the frame's sequence number
    ended: str | None = None  # the source's final status once it has ended
    jpeg: bytes | None = None
    jpeg_frames: int = 0  # the value of ``frames`` that ``jpeg`` shows
    encoded_at: float = -math.inf
    # Stream clients of this source take turns encoding; the publisher never takes this lock.
    encoding: threading.Lock = field(default_factory=threading.Lock)


def _jsonable(value: object) -> object:
    """A count as plain JSON: numpy scalars unwrapped, NaN and infinities as null."""
    if value is None or isinstance(value, bool | np.bool_):
        return None if value is None else bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    return str(value)


class LatestFrames:
    """The board behind a live view.

    Args:
        max_fps: Most JPEG encodes per second per source.
        jpeg_quality: JPEG quality, 1-100.

    Attributes:
        lock: Guards :attr:`sources`; notified on every publish (stream clients wait on it).
        sources: Source name -> its latest frame, in the order sources first published.
        columns: Source name -> what each of its count columns counts (see :meth:`describe_columns`).
        jpeg_encodes: JPEG encodes so far.
    """

    def __init__(self, max_fps: float, jpeg_quality: int) -> None:
        self.max_fps = max_fps
        self.jpeg_quality = jpeg_quality
        self.lock = threading.Condition()
        self.sources: dict[str, _Latest] = {}
        self.columns: dict[str, dict[str, dict[str, str]]] = {}
        self.jpeg_encodes = 0

    def describe_columns(self, source: str, columns: Mapping[str, Column]) -> None:
        """What each count column ``source`` publishes counts (its kind, item and part): the page sorts
        them into its tables by it, not by their names, which are the user's."""
        described = {str(name): asdict(column) for name, column in columns.items()}
        with self.lock:
            self.columns[source] = described

    def publish(
        self, source: str, image_bgr: np.ndarray, frame_index: int, timestamp_s: float, counts: dict[str, float | int]
    ) -> None:
        """Make this the latest frame of ``source`` (kept by reference, not copied)."""
        now = time.monotonic()
        counts = dict(counts)  # the caller may reuse its dict
        with self.lock:
            latest = self.sources.get(source)
            if latest is None:
                self.sources[source] = _Latest(image_bgr, int(frame_index), float(timestamp_s), counts, now)
            else:
                latest.image, latest.frame_index, latest.timestamp_s = image_bgr, int(frame_index), float(timestamp_s)
                latest.counts, latest.published_at = counts, now
                latest.frames += 1
            self.lock.notify_all()

    def end(self, source: str, status: str) -> None:
        """``source`` has ended with ``status``: its last frame stays."""
        with self.lock:
            latest = self.sources.get(source)
            if latest is not None:
                latest.ended = status

    def counts(self) -> dict[str, Any]:
        """The ``/counts`` document."""
        with self.lock:
            return {
                "sources": {
                    name: {
                        "frame_index": latest.frame_index,
                        "timestamp_s": _jsonable(latest.timestamp_s),
                        "counts": {str(key): _jsonable(value) for key, value in latest.counts.items()},
                        "columns": self.columns.get(name, {}),
                    }
                    for name, latest in self.sources.items()
                }
            }

    def ages(self, now: float) -> dict[str, dict[str, Any]]:
        """Per source: seconds since its last frame, frames so far, and ``ended`` once it has."""
        with self.lock:
            return {
                name: {"last_frame_age_s": round(now - latest.published_at, 3), "frames": latest.frames}
                | ({"ended": latest.ended} if latest.ended else {})
                for name, latest in self.sources.items()
            }

    def jpeg(self, name: str) -> tuple[bytes, int] | None:
        """The latest frame of ``name`` as JPEG and its sequence number; encodes at most ``max_fps``/s."""
        with self.lock:
            latest = self.sources.get(name)
        if latest is None:
            return None
        with latest.encoding:
            with self.lock:
                fresh = latest.jpeg_frames == latest.frames
                too_soon = time.monotonic() - latest.encoded_at < 1.0 / self.max_fps
                if latest.jpeg is not None and (fresh or too_soon):
                    return latest.jpeg, latest.jpeg_frames
                image, frames = latest.image, latest.frames
            ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise ValueError(f"cannot encode a {image.shape} {image.dtype} frame as JPEG")
            with self.lock:
                latest.jpeg, latest.jpeg_frames, latest.encoded_at = buffer.tobytes(), frames, time.monotonic()
                self.jpeg_encodes += 1
                return latest.jpeg, frames
