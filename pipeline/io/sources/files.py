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

import glob
import logging
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.errors import SourceError
from pipeline.io.sources.frames import Frame, FrameSource, TimedImage, error_reason, has_clock
from pipeline.io.sources.live import LiveSource, StreamSource, WebcamSource
from pipeline.io.sources.snapshot_times import snapshot_offsets_s
from pipeline.io.urls import is_stream_url, stream_name

__all__ = [
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "LiveSource",
    "StreamSource",
    "TimedImage",
    "VideoFileSource",
    "WebcamSource",
    "is_live_spec",
    "open_source",
    "read_stream_list",
]

log = logging.getLogger(__name__)

TRUNCATION_TOLERANCE_FRAMES = 2
"""A file that decodes this many frames fewer than its container announces still counts as complete."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


class VideoFileSource(FrameSource):
    """A video file decoded with PyAV (FFmpeg); timestamps come from the container's PTS."""

    def __init__(self, path: str | Path, max_frames: int | None = None) -> None:
        self.path = Path(path)
        self.name = source_name(str(self.path))
        self.display_name = str(self.path)
        self._max_frames = max_frames
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"{self.path}: cannot open video ({error_reason(exc)})") from None
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
            raise SourceError(f"{self.path}: decoding failed at frame {frame_index} ({error_reason(exc)})") from None
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
    """Images from a folder or a glob pattern. When every image has a capture time (in its file name or
    EXIF, see :mod:`pipeline.io.sources.snapshot_times`), they play in time order at those times; otherwise in
    name order at the configured frame rate.

    The first readable image sets the size; an image that cannot be read or has another size is
    skipped with a warning and counted in :attr:`frames_skipped` (its frame index and time stay
    unused, like a dropped frame).
    """

    def __init__(self, spec: str, fps: float = 30.0, max_frames: int | None = None) -> None:
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:  # a glob, or a single image
            files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        self.name = source_name(spec)
        if not files:
            raise SourceError(f"{spec}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        self.display_name = spec
        offsets_s = snapshot_offsets_s(files)
        if offsets_s is not None:
            offsets_s, files = (list(v) for v in zip(*sorted(zip(offsets_s, files, strict=True)), strict=True))
        self.files = files[:max_frames] if max_frames else files
        self.offsets_s = offsets_s[: len(self.files)] if offsets_s is not None else None
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
            offset_s = self.offsets_s[frame_index] if self.offsets_s is not None else frame_index / float(self.fps)
            yield Frame(image, frame_index, offset_s)


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


def source_name(spec: str) -> str:
    """The name of the source :func:`open_source` opens from ``spec`` (its output folder's name), known
    without opening it: a video's file name without its suffix, an image folder's name, the folder of a
    glob or image (``images`` if none), a stream's host, port and path, ``camera<N>`` for a webcam.

    Example:
        >>> source_name("videos/highway.mp4"), source_name("rtsp://user:pw@cam.local:554/live"), source_name("0")
        ('highway', 'cam.local_554_live', 'camera0')
    """
    if is_live_spec(spec):
        return WebcamSource.name_for(int(spec)) if spec.isdigit() else stream_name(spec)
    path = Path(spec)
    if path.is_dir():
        return path.name
    if path.suffix.lower() in IMAGE_SUFFIXES or (not path.exists() and glob.has_magic(spec)):
        return path.parent.name or "images"
    return path.stem


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
