"""Live sources: feeds that may drop and come back (network streams, webcams).

They reconnect with capped exponential backoff when they stall or fail, and report each
disconnect and reconnect through :meth:`FrameSource.drain_events`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import sys
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2

from pipeline.concurrency import Backoff
from pipeline.errors import SourceError
from pipeline.io.sources.frames import Frame, FrameSource, TimedImage, error_reason, has_clock
from pipeline.io.urls import mask_credentials, stream_name

log = logging.getLogger(__name__)


class ConnectionEvents:
    """A live source's connection events (attempts, disconnects, reconnects), kept for the run to
    write to ``events.jsonl`` and logged as warnings; the newest 1000 at most.

    Args:
        source: The source's display name (free of credentials).
        started: ``time.monotonic()`` when the source was created (``wall_time_s`` counts from it).
    """

    def __init__(self, source: str, started: float) -> None:
        self.source = source
        self.started = started
        self._events: deque[dict[str, Any]] = deque(maxlen=1000)

    def add(self, event: str, **fields: Any) -> None:
        record = {"event": event, "source": self.source, "wall_time_s": round(time.monotonic() - self.started, 3)}
        record.update(fields)
        self._events.append(record)
        log.warning("%s: %s %s", self.source, event, " ".join(f"{k}={v}" for k, v in fields.items()))

    def drain(self) -> list[dict[str, Any]]:
        """The events since the last call, oldest first."""
        events = []
        while self._events:
            events.append(self._events.popleft())
        return events


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
        self.backoff = Backoff(max_reconnects, backoff_s, backoff_max_s)
        self._max_frames = max_frames
        self.frame_count = max_frames
        self._stop = stop_event or threading.Event()
        self._started = time.monotonic()
        self.events = ConnectionEvents(self.display_name, self._started)
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

    def drain_events(self) -> list[dict[str, Any]]:
        return self.events.drain()

    def _connect_with_retries(self, first: bool) -> tuple[Iterator[TimedImage], TimedImage] | None:
        """The next connection, or None if stopped meanwhile; each failed attempt is an event.

        Raises:
            SourceError: The attempts allowed (``max_reconnects``) all failed.
        """
        attempt = 0
        while True:
            try:
                frames, image, self.fps = self._connect()
                break
            except SourceError as exc:
                reason = mask_credentials(str(exc))
            attempt += 1
            if self.backoff.exhausted(attempt):
                giving_up = f"{self.display_name}: {'cannot connect' if first else 'lost and not back'}"
                raise SourceError(f"{giving_up} after {attempt} attempt{'' if attempt == 1 else 's'} ({reason})")
            wait_s = self.backoff.wait_s(attempt)
            self.events.add("reconnect_attempt", attempt=attempt, wait_s=round(wait_s, 2), reason=reason)
            if self._stop.wait(wait_s):
                return None
        # When the first frame came, not when someone starts reading (the first connection is
        # opened before the model loads): frames buffered meanwhile keep their own times.
        self._connected_s = time.monotonic() - self._started
        return frames, image

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
            self.events.add("stream_disconnected", frame_index=frame_index, reason=mask_credentials(reason))
            connection = self._connect_with_retries(first=False)
            if connection is None:
                return
            frames, first = connection
            self.events.add(
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
            raise SourceError(f"cannot open stream: {error_reason(exc)}") from None
        if not container.streams.video:
            container.close()
            raise SourceError("no video in the stream")
        self._container = container
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or 25
        self.read_clock = not has_clock(container)
        frames = self._decode(container, stream, not self.read_clock)
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
            raise SourceError(f"read failed: {error_reason(exc)}") from None

    def _close_connection(self) -> None:
        if self._container is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError):
                self._container.close()
            self._container = None


class WebcamSource(LiveSource):
    """A local camera by device index, read with OpenCV; timestamps from the wall clock."""

    read_clock = True

    @staticmethod
    def name_for(index: int) -> str:
        """The name (and output folder) of webcam ``index``."""
        return f"camera{index}"

    def __init__(self, index: int, **kwargs: Any) -> None:
        self.index = index
        self.name = self.name_for(index)
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
