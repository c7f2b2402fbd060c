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
import sys
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
from pipeline.io.urls import is_stream_url, mask_credentials, stream_name

log = logging.getLogger(__name__)

TimedImage = tuple[np.ndarray, float | None]
"""A BGR image and its stream time in seconds (None when the stream has no clock)."""

TRUNCATION_TOLERANCE_FRAMES = 2
"""A file that decodes this many frames fewer than its container announces still counts as complete."""

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
    frames_skipped: int = 0
    """Frames left out because they could not be read (an unreadable or mis-sized image)."""
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
        if not stream.average_rate and stream.frames == 0:  # its other "rates" are the time base's tick
            self._container.close()
            raise SourceError(f"{self.path}: the video has no frames")
        rate = stream.average_rate or stream.guessed_rate
        if not rate or self.width <= 0 or self.height <= 0:
            self._container.close()
            raise SourceError(f"{self.path}: cannot read frame size or rate (damaged or not a video)")
        self.fps = Fraction(rate)
        if not has_clock(self._container):
            log.warning("%s: the file has no timestamps; assuming %g fps for its times and video", path, float(rate))
        self._declared_frames = stream.frames or None
        frames = self._declared_frames
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
        declared = self._declared_frames
        # Containers may miscount by a frame or two; a cut file loses far more.
        if declared and frame_index < min(declared, self._max_frames or declared) - TRUNCATION_TOLERANCE_FRAMES:
            self.truncated = True
            log.warning(
                "%s: the video ends at frame %d of the %d it announces (truncated)", self.path, frame_index, declared
            )

    def close(self) -> None:
        self._container.close()


class ImageFolderSource(FrameSource):
    """Images from a folder or a glob pattern, in name order, at a configured frame rate.

    The first readable image sets the size; an image that cannot be read or has another size is
    skipped with a warning and counted in :attr:`frames_skipped` (its frame index and time stay
    unused, like a dropped frame).
    """

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
        self.files = files[:max_frames] if max_frames else files
        first = next((image for image in map(self._read, self.files) if image is not None), None)
        if first is None:
            raise SourceError(f"{spec}: none of the {len(self.files)} images can be read (damaged or unsupported)")
        self.height, self.width = first.shape[:2]
        self.fps = Fraction(fps).limit_denominator(1001)
        self.frame_count = len(self.files)

    @staticmethod
    def _read(path: Path) -> np.ndarray | None:
        return cv2.imread(str(path), cv2.IMREAD_COLOR)

    def _problem(self, image: np.ndarray | None) -> str | None:
        if image is None:
            return "cannot read image (damaged or unsupported format)"
        if image.shape[:2] != (self.height, self.width):
            return f"image is {image.shape[1]}x{image.shape[0]}, the first image is {self.width}x{self.height}"
        return None

    def __iter__(self) -> Iterator[Frame]:
        for frame_index, path in enumerate(self.files):
            image = self._read(path)
            problem = self._problem(image)
            if problem is not None:
                self.frames_skipped += 1
                log.warning("%s: %s; skipped", path, problem)
                continue
            yield Frame(image, frame_index, frame_index / float(self.fps))


class LiveSource(FrameSource):
    """A feed that may drop and come back: connects, yields frames, and reconnects on a stall
    (no frame for ``stall_timeout_s``) or an error, with capped exponential backoff.

    Timestamps come from the stream (PTS) within a connection and from the wall clock across
    reconnects, so a gap in the feed is a gap in the timestamps; a feed without a stream clock
    (MJPEG over HTTP, a webcam) is timed by the monotonic clock when each frame is read. The first
    connection happens in the constructor (with the same retries), so a dead source fails before
    any output is written.

    Args:
        spec: What to open (URL or device index as text).
        stall_timeout_s: Seconds without a frame before the connection counts as dead.
        max_reconnects: Attempts after a failure before giving up; None retries forever.
        backoff_s: First wait between attempts; doubles each time up to ``backoff_max_s``.
        backoff_max_s: Longest wait between attempts.
        max_frames: Stop after this many frames.
        stop_event: Set it (or call :meth:`stop`) to end the connection attempts and the iteration,
            from any thread; lets a caller stop a source whose constructor is still connecting.
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
        stop_event: threading.Event | None = None,
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
        self._stop = stop_event or threading.Event()
        self._started = time.monotonic()
        connection = self._connect_with_retries(first=True)
        if connection is None:
            raise SourceError(f"{self.display_name}: stopped while connecting")
        self._connection = connection
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

    def _connect_with_retries(self, first: bool) -> tuple[Iterator[TimedImage], TimedImage] | None:
        """The next connection, or None if stopped meanwhile."""
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
                return None

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
                    if stream_time is None:  # no stream clock: when it was read (the first frame: on connecting)
                        read_s = offset_s if image is first[0] else time.monotonic() - self._started
                        timestamp = max(read_s, last_timestamp)
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
            connection = self._connect_with_retries(first=False)
            if connection is None:
                return
            frames, first = connection
            self._event(
                "stream_reconnected", frame_index=frame_index, width=first[0].shape[1], height=first[0].shape[0]
            )

    def stop(self) -> None:
        self._stop.set()

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
        frames = self._decode(container, stream, has_clock(container))
        try:
            first = next(frames)
        except StopIteration:
            raise SourceError("the stream gave no frame") from None
        return frames, first, Fraction(rate)

    @staticmethod
    def _decode(container: Any, stream: Any, clock: bool) -> Iterator[TimedImage]:
        try:
            for decoded in container.decode(stream):
                timed = clock and decoded.pts is not None and stream.time_base
                seconds = float(decoded.pts * stream.time_base) if timed else None
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
        device = Path(f"/dev/video{index}")
        if sys.platform == "linux" and not device.exists():  # retrying cannot make it appear
            raise SourceError(f"camera {index}: no such device ({device} does not exist)")
        super().__init__(str(index), **kwargs)

    def _connect(self) -> tuple[Iterator[TimedImage], TimedImage, Fraction]:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # its own error is ours, in one line
        try:
            capture = cv2.VideoCapture(self.index)
        finally:
            cv2.utils.logging.setLogLevel(level)
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
    stop_event: threading.Event | None = None,
) -> FrameSource:
    """Open a video file, an image folder or glob, a webcam (device index) or a network stream.

    Args:
        spec: Path to a video file or a folder of images, a glob such as ``"frames/*.jpg"``, a
            device index such as ``"0"``, or a URL (``rtsp://``, ``rtmp://``, ``http(s)://``).
        fps: Frame rate assigned to image sequences (videos use their own).
        max_frames: Stop after this many frames.
        stall_timeout_s: Live sources: seconds without a frame before reconnecting.
        max_reconnects: Live sources: give up after this many failed attempts (None: never).
        stop_event: Live sources: set it from another thread to stop connecting (see :class:`LiveSource`).

    Raises:
        SourceError: Nothing usable at ``spec`` (for live sources, after the retries).
    """
    if is_live_spec(spec):
        live = {"stall_timeout_s": stall_timeout_s, "max_reconnects": max_reconnects, "stop_event": stop_event}
        if spec.isdigit():
            return WebcamSource(int(spec), max_frames=max_frames, **live)
        return StreamSource(spec, max_frames=max_frames, **live)
    path = Path(spec)
    if path.is_dir() or (not path.exists() and glob.has_magic(spec)):
        return ImageFolderSource(spec, fps=fps, max_frames=max_frames)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource(spec, fps=fps, max_frames=max_frames)
    return VideoFileSource(path, max_frames=max_frames)


def is_live_spec(spec: str) -> bool:
    """Whether ``spec`` names a live feed (a webcam index or a stream URL) rather than files."""
    return spec.isdigit() or is_stream_url(spec)


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
