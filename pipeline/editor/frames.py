"""Frames for the editor's background: any source ``vpipe run`` reads, one frame on request."""

from __future__ import annotations

import threading

import numpy as np

from pipeline.errors import SourceError
from pipeline.io.sources.files import FrameSource, open_source


class FrameGrabber:
    """Reads single frames of a source: frame N of a file or folder, a fresh frame of a live feed.

    Each request opens the source anew, so a webcam or stream is not held open between requests
    and a file is never read ahead.

    Args:
        spec: What ``vpipe run`` takes as SOURCE (a file, folder, glob, webcam index or URL).
        fps: Frame rate for image folders (as ``source.fps``).

    Raises:
        SourceError: The source cannot be opened or yields no frame.
    """

    def __init__(self, spec: str, fps: float = 30.0) -> None:
        self.spec = spec
        self._fps = fps
        self._lock = threading.Lock()  # one decode at a time, however many browser tabs ask
        source = self._open(None)  # no frame limit, so frame_count is the whole source's
        try:
            self.width, self.height = source.width, source.height
            self.live = source.live
            self.frame_count = source.frame_count
            self.display_name = source.display_name or spec
            first = next(iter(source), None)
        finally:
            source.close()
        if first is None:
            raise SourceError(f"{self.display_name}: no frame could be read")
        self._first = first.image
        self._shown: tuple[int, np.ndarray] = (0, first.image)  # the last frame served: (index, image)

    def _open(self, frames: int | None) -> FrameSource:
        # A live feed gets one reconnect attempt: the page reports a dead camera instead of waiting.
        return open_source(self.spec, fps=self._fps, max_frames=frames, stall_timeout_s=5.0, max_reconnects=1)

    @staticmethod
    def _last_frame(source: FrameSource) -> np.ndarray:
        image = None
        for frame in source:
            image = frame.image
        if image is None:
            raise SourceError(f"{source.display_name}: no frame could be read")
        return image

    def grab(self, index: int = 0) -> np.ndarray:
        """Frame ``index`` (clamped to the last one) of a file or folder; a new frame of a live feed.

        Raises:
            SourceError: The source cannot be read now, or changed size since the editor opened it.
        """
        index = self._clamp(index)
        if index == 0 and not self.live:
            return self._first
        with self._lock:
            source = self._open(1 if self.live else index + 1)
            try:
                image = self._last_frame(source)
            finally:
                source.close()
        if image.shape[:2] != (self.height, self.width):
            raise SourceError(
                f"{self.display_name}: the frame is now {image.shape[1]}x{image.shape[0]}, "
                f"was {self.width}x{self.height}: restart the editor"
            )
        self._shown = (index, image)
        return image

    def shown(self, index: int = 0) -> np.ndarray:
        """The frame :meth:`grab` last returned for ``index`` (for a live feed, the last one it
        returned): the image the page shows, not a newer one; read anew if it was another frame.

        Raises:
            SourceError: As :meth:`grab`.
        """
        shown_index, image = self._shown
        if self.live or shown_index == self._clamp(index):
            return image
        return self.grab(index)

    def _clamp(self, index: int) -> int:
        """``index`` within the source's frames (0 for a live feed, whose frames have no number)."""
        if self.live:
            return 0
        index = max(0, index)
        return index if self.frame_count is None else min(index, self.frame_count - 1)
