"""Frame sources: each yields :class:`Frame` packets with the source's own timestamps.

A source is opened (and fails with a one-line :class:`SourceError`) before anything is written,
then iterated once. Files and image folders end; live sources (webcams, RTSP/RTMP/HTTP streams)
reconnect with capped exponential backoff when they stall or fail, and report each disconnect
and reconnect through :meth:`FrameSource.drain_events`.

Example::

    source = open_source("sample_videos/highway.mp4")
    for frame in source:
        print(frame.frame_index, frame.timestamp_s, frame.image.shape)
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from pipeline.errors import SourceError
from pipeline.io.snapshot_times import snapshot_offsets_s
from pipeline.io.urls import is_stream_url, mask_credentials, stream_name

log = logging.getLogger(__name__)

TimedImage = tuple[np.ndarray, float | None]
"""A BGR image and its stream time in seconds (None when the stream has no clock)."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


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

    def drain_events(self) -> list[dict[str, Any]]:
        """Connection events (disconnects, reconnects) since the last call, as JSON-ready records."""
        return []

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Yield frames in order. Raises SourceError if the source fails mid-way."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the source's resources."""


class VideoFileSource(FrameSource):
    """A video file decoded with PyAV (FFmpeg); timestamps come from the container's PTS."""

    def __init__(self, path: str | Path, max_frames: int | None = None) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self.display_name = str(self.path)
        self._max_frames = max_frames
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"{self.path}: cannot open video ({_reason(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"{self.path}: no video stream in file")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: decoding stays off the critical path
        self._stream = stream
        self.width = stream.codec_context.width
        self.height = stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or self.width <= 0 or self.height <= 0:
            self._container.close()
            raise SourceError(f"{self.path}: cannot read frame size or rate (damaged or not a video)")
        self.fps = Fraction(rate)
        frames = stream.frames or None
        self.frame_count = min(frames, max_frames) if frames and max_frames else frames

    def __iter__(self) -> Iterator[Frame]:
        time_base = self._stream.time_base
        start_pts: int | None = None
        frame_index = 0
        try:
            for decoded in self._container.decode(self._stream):
                if self._max_frames is not None and frame_index >= self._max_frames:
                    break
                if decoded.pts is not None and time_base is not None:
                    start_pts = decoded.pts if start_pts is None else start_pts
                    timestamp_s = float((decoded.pts - start_pts) * time_base)
                else:
                    timestamp_s = frame_index / float(self.fps)
                yield Frame(decoded.to_ndarray(format="bgr24"), frame_index, timestamp_s)
                frame_index += 1
        except av.error.FFmpegError as exc:
            raise SourceError(f"{self.path}: decoding failed at frame {frame_index} ({_reason(exc)})") from None
        if frame_index == 0:
            raise SourceError(f"{self.path}: no frame could be decoded (damaged or empty video)")

    def close(self) -> None:
        self._container.close()


class ImageFolderSource(FrameSource):
    """Images from a folder or a glob pattern. When every image has a capture time (in its file name or
    EXIF, see :mod:`pipeline.io.snapshot_times`), they play in time order at those times; otherwise in
    name order at the configured frame rate."""

    def __init__(self, spec: str, fps: float = 30.0, max_frames: int | None = None) -> None:
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            self.name = path.name
        else:  # a glob, or a single image
            files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
            self.name = path.parent.name or "images"
        if not files:
            raise SourceError(f"{spec}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        self.display_name = spec
        offsets_s = snapshot_offsets_s(files)
        if offsets_s is not None:
            offsets_s, files = (list(v) for v in zip(*sorted(zip(offsets_s, files, strict=True)), strict=True))
        self.files = files[:max_frames] if max_frames else files
        self.offsets_s = offsets_s[: len(self.files)] if offsets_s is not None else None
        first = self._read(self.files[0])
        self.height, self.width = first.shape[:2]
        self.fps = Fraction(fps).limit_denominator(1001)
        self.frame_count = len(self.files)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{path}: cannot read image (damaged or unsupported format)")
        return image

    def __iter__(self) -> Iterator[Frame]:
        for frame_index, path in enumerate(self.files):
            image = self._read(path)
            if image.shape[:2] != (self.height, self.width):
                raise SourceError(
                    f"{path}: image is {image.shape[1]}x{image.shape[0]}, "
                    f"but the first image is {self.width}x{self.height}; all images must have one size"
                )
            offset_s = self.offsets_s[frame_index] if self.offsets_s is not None else frame_index / float(self.fps)
            yield Frame(image, frame_index, offset_s)


class LiveSource(FrameSource):
    """A feed that may drop and come back: connects, yields frames, and reconnects on a stall
    (no frame for ``stall_timeout_s``) or an error, with capped exponential backoff.

    Timestamps come from the stream (PTS) within a connection and from the wall clock across
    reconnects, so a gap in the feed is a gap in the timestamps. The first connection happens in
    the constructor (with the same retries), so a dead source fails before any output is written.

    Args:
        spec: What to open (URL or device index as text).
        stall_timeout_s: Seconds without a frame before the connection counts as dead.
        max_reconnects: Attempts after a failure before giving up; None retries forever.
        backoff_s: First wait between attempts; doubles each time up to ``backoff_max_s``.
        backoff_max_s: Longest wait between attempts.
        max_frames: Stop after this many frames.
    """

    live = True

    def __init__(
        self,
        spec: str,
        stall_timeout_s: float = 10.0,
        max_reconnects: int | None = None,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_frames: int | None = None,
    ) -> None:
        self.spec = spec
        self.display_name = mask_credentials(spec)
        self.stall_timeout_s = stall_timeout_s
        self.max_reconnects = max_reconnects
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._max_frames = max_frames
        self.frame_count = max_frames
        self._events: deque[dict[str, Any]] = deque(maxlen=1000)
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._connection = self._connect_with_retries(first=True)
        self.height, self.width = self._connection[1][0].shape[:2]

    @abstractmethod
    def _connect(self) -> tuple[Iterator[TimedImage], TimedImage, Fraction]:
        """Open the feed; returns (the following frames, the first frame, fps). A frame is a BGR image
        with its stream time in seconds (None if the stream has no clock)."""

    def _close_connection(self) -> None:
        """Release the current connection."""

    def _event(self, event: str, **fields: Any) -> None:
        record = {
            "event": event,
            "source": self.display_name,
            "wall_time_s": round(time.monotonic() - self._started, 3),
        }
        record.update(fields)
        self._events.append(record)
        log.warning("%s: %s %s", self.display_name, event, " ".join(f"{k}={v}" for k, v in fields.items()))

    def drain_events(self) -> list[dict[str, Any]]:
        events = []
        while self._events:
            events.append(self._events.popleft())
        return events

    def _connect_with_retries(self, first: bool) -> tuple[Iterator[TimedImage], TimedImage]:
        attempt = 0
        while True:
            try:
                frames, image, fps = self._connect()
                self.fps = fps
                # When the first frame came, not when someone starts reading (the first connection
                # is opened before the model loads): frames buffered meanwhile keep their own times.
                self._connected_s = time.monotonic() - self._started
                return frames, image
            except SourceError as exc:
                reason = str(exc)
            attempt += 1
            if self.max_reconnects is not None and attempt > self.max_reconnects:
                raise SourceError(
                    f"{self.display_name}: {'cannot connect' if first else 'lost and not back'} "
                    f"after {attempt} attempts ({mask_credentials(reason)})"
                )
            wait = min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s)
            self._event("reconnect_attempt", attempt=attempt, wait_s=round(wait, 2), reason=mask_credentials(reason))
            if self._stop.wait(wait):
                raise SourceError(f"{self.display_name}: stopped while reconnecting")

    def __iter__(self) -> Iterator[Frame]:
        frame_index = 0
        last_timestamp = -1.0
        frames, first = self._connection
        while not self._stop.is_set():
            # A buffered stream can run ahead of the wall clock: never go back in time on reconnect.
            offset_s = max(self._connected_s, last_timestamp + 1.0 / float(self.fps))
            first_stream_time: float | None = None
            try:
                for image, stream_time in itertools.chain([first], frames):
                    if self._max_frames is not None and frame_index >= self._max_frames:
                        return
                    if stream_time is None:  # no stream clock: the wall clock
                        timestamp = max(time.monotonic() - self._started, last_timestamp)
                    else:
                        first_stream_time = stream_time if first_stream_time is None else first_stream_time
                        # Stream clocks jitter (RTP rounding): timestamps never go back.
                        timestamp = max(offset_s + stream_time - first_stream_time, last_timestamp)
                    yield Frame(image, frame_index, timestamp)
                    frame_index, last_timestamp = frame_index + 1, timestamp
                    if self._stop.is_set():
                        return
                reason = "the stream ended"
            except SourceError as exc:
                reason = str(exc)
            self._close_connection()
            if self._stop.is_set() or (self._max_frames is not None and frame_index >= self._max_frames):
                return
            self._event("stream_disconnected", frame_index=frame_index, reason=mask_credentials(reason))
            frames, first = self._connect_with_retries(first=False)
            self._event(
                "stream_reconnected", frame_index=frame_index, width=first[0].shape[1], height=first[0].shape[0]
            )

    def close(self) -> None:
        self._stop.set()
        self._close_connection()


class StreamSource(LiveSource):
    """A network stream (RTSP, RTMP, HTTP MJPEG/HLS/plain video) decoded with PyAV (FFmpeg)."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.name = stream_name(url)
        self._container: Any = None
        super().__init__(url, **kwargs)

    def _connect(self) -> tuple[Iterator[TimedImage], TimedImage, Fraction]:
        options = {"rtsp_transport": "tcp"} if self.spec.lower().startswith("rtsp") else {}
        try:
            container = av.open(self.spec, options=options, timeout=(self.stall_timeout_s, self.stall_timeout_s))
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open stream: {_reason(exc)}") from None
        if not container.streams.video:
            container.close()
            raise SourceError("no video in the stream")
        self._container = container
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or 25
        frames = self._decode(container, stream)
        try:
            first = next(frames)
        except StopIteration:
            raise SourceError("the stream gave no frame") from None
        return frames, first, Fraction(rate)

    @staticmethod
    def _decode(container: Any, stream: Any) -> Iterator[TimedImage]:
        try:
            for decoded in container.decode(stream):
                seconds = (
                    float(decoded.pts * stream.time_base) if decoded.pts is not None and stream.time_base else None
                )
                yield decoded.to_ndarray(format="bgr24"), seconds
        except (av.error.FFmpegError, OSError) as exc:  # includes the read timeout of a stalled feed
            raise SourceError(f"read failed: {_reason(exc)}") from None

    def _close_connection(self) -> None:
        if self._container is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError):
                self._container.close()
            self._container = None


class WebcamSource(LiveSource):
    """A local camera by device index, read with OpenCV; timestamps from the wall clock."""

    def __init__(self, index: int, **kwargs: Any) -> None:
        self.index = index
        self.name = f"camera{index}"
        self._capture: cv2.VideoCapture | None = None
        super().__init__(str(index), **kwargs)

    def _connect(self) -> tuple[Iterator[TimedImage], TimedImage, Fraction]:
        capture = cv2.VideoCapture(self.index)
        ok, first = capture.read() if capture.isOpened() else (False, None)
        if not ok or first is None:
            capture.release()
            raise SourceError(f"camera {self.index} cannot be opened or gives no frame")
        self._capture = capture
        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        stall = self.stall_timeout_s

        def frames() -> Iterator[TimedImage]:
            last = time.monotonic()
            while True:
                ok, image = capture.read()
                if ok and image is not None:
                    last = time.monotonic()
                    yield image, None
                elif time.monotonic() - last > stall:
                    raise SourceError(f"camera {self.index} gave no frame for {stall:g} s")
                else:
                    time.sleep(0.01)

        return frames(), (first, None), Fraction(fps).limit_denominator(1001)

    def _close_connection(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def open_source(
    spec: str,
    fps: float = 30.0,
    max_frames: int | None = None,
    stall_timeout_s: float = 10.0,
    max_reconnects: int | None = None,
) -> FrameSource:
    """Open a video file, an image folder or glob, a webcam (device index) or a network stream.

    Args:
        spec: Path to a video file or a folder of images, a glob such as ``"frames/*.jpg"``, a
            device index such as ``"0"``, or a URL (``rtsp://``, ``rtmp://``, ``http(s)://``).
        fps: Frame rate assigned to image sequences (videos use their own).
        max_frames: Stop after this many frames.
        stall_timeout_s: Live sources: seconds without a frame before reconnecting.
        max_reconnects: Live sources: give up after this many failed attempts (None: never).

    Raises:
        SourceError: Nothing usable at ``spec`` (for live sources, after the retries).
    """
    if spec.isdigit():
        return WebcamSource(
            int(spec), stall_timeout_s=stall_timeout_s, max_reconnects=max_reconnects, max_frames=max_frames
        )
    if is_stream_url(spec):
        return StreamSource(spec, stall_timeout_s=stall_timeout_s, max_reconnects=max_reconnects, max_frames=max_frames)
    path = Path(spec)
    if path.is_dir() or (not path.exists() and glob.has_magic(spec)):
        return ImageFolderSource(spec, fps=fps, max_frames=max_frames)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource(spec, fps=fps, max_frames=max_frames)
    return VideoFileSource(path, max_frames=max_frames)


def read_stream_list(path: str | Path) -> list[str]:
    """Source specs from a ``.streams`` file: one per line; blank lines and ``#`` comments ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read stream list ({exc.strerror or exc})") from None
    specs = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not specs:
        raise SourceError(f"{path}: the stream list is empty")
    return specs


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
