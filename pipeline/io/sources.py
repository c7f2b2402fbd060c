"""Frame sources: each yields :class:`Frame` packets with the source's own timestamps.

A source is opened (and fails with a one-line :class:`SourceError`) before anything is written,
then iterated once. Live sources (webcams, RTSP/HTTP) will implement the same interface.

Example::

    source = open_source("sample_videos/highway.mp4")
    for frame in source:
        print(frame.frame_index, frame.timestamp_s, frame.image.shape)
"""

from __future__ import annotations

import glob
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.errors import SourceError

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
    """Images from a folder or a glob pattern, in name order, at a configured frame rate."""

    def __init__(self, spec: str, fps: float = 30.0, max_frames: int | None = None) -> None:
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            self.name = path.name
        else:
            files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
            self.name = path.parent.name or "images"
        if not files:
            raise SourceError(f"{spec}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        self.files = files[:max_frames] if max_frames else files
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
            yield Frame(image, frame_index, frame_index / float(self.fps))


def open_source(spec: str, fps: float = 30.0, max_frames: int | None = None) -> FrameSource:
    """Open a video file, an image folder or an image glob.

    Args:
        spec: Path to a video file or a folder of images, or a glob such as ``"frames/*.jpg"``.
        fps: Frame rate assigned to image sequences (videos use their own).
        max_frames: Stop after this many frames.

    Raises:
        SourceError: Nothing usable at ``spec``.
    """
    path = Path(spec)
    if path.is_dir() or (not path.exists() and glob.has_magic(spec)):
        return ImageFolderSource(spec, fps=fps, max_frames=max_frames)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource(spec, fps=fps, max_frames=max_frames)
    return VideoFileSource(path, max_frames=max_frames)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
