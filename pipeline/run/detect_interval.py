"""``--detect-every auto``: each camera's detection interval, chosen as it runs to keep it real time.

A camera is behind when it processed fewer frames per second of wall clock than its source delivers
(less 5 %), or dropped frames (a live feed read latest-frame-first); then its interval goes up by one.
It goes down by one when that surely keeps up: with a frame costing ``a + b / N`` at interval ``N``
(``b``: the detection), the rate at ``N - 1`` is at least ``N - 1`` in ``N`` of the rate at ``N``. A
live feed cannot show more than its own rate, so after ``hold`` windows in real time the interval
is lowered on trial; if the camera then falls behind, it goes back up and waits twice as long before
the next trial.

The interval never exceeds :data:`MAX_AUTO_INTERVAL`, nor leaves fewer than
:data:`MIN_DETECTION_FPS` detected frames per second: the rates the low-frame-rate tests
(``tests/test_low_fps.py``) hold the counts exact at.

Example:
    >>> chooser = IntervalChooser(source_fps=30.0)
    >>> chooser.limit, chooser.interval
    (4, 1)
    >>> chooser.observe(frames=24, elapsed_s=2.0)  # 12 fps of 30: behind
    2
    >>> chooser.observe(frames=60, elapsed_s=2.0)  # 30 fps: holds, at 2 not surely at 1
    2
    >>> chooser.observe(frames=140, elapsed_s=2.0)  # 70 fps at 2: at least 35 at 1
    1
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

MAX_AUTO_INTERVAL = 4
"""The most frames per detection ``auto`` chooses."""
MIN_DETECTION_FPS = 5.0
"""The fewest detected frames per second of video ``auto`` leaves."""
TOLERANCE = 0.05
"""A camera within 5 % of its source's rate is in real time (a window's rate is noisy)."""
SETTLE_WINDOWS = 2
"""Windows in real time after a change before the interval is lowered."""
HOLD_WINDOWS = 5
"""Windows in real time, not surely with room, before the interval is lowered on trial; doubled
after each trial that falls behind, up to :data:`MAX_HOLD_WINDOWS`."""
MAX_HOLD_WINDOWS = 160
CHANGES_KEPT = 100
"""The latest changes reported in ``summary.json`` (memory bounded over weeks)."""


class IntervalChooser:
    """The detection interval of one camera, from its measured processing rate, window by window.

    Args:
        source_fps: The frames per second the camera delivers.
        max_interval: The largest interval to choose.
        min_detection_fps: The fewest detected frames per second to leave.
    """

    def __init__(
        self, source_fps: float, max_interval: int = MAX_AUTO_INTERVAL, min_detection_fps: float = MIN_DETECTION_FPS
    ) -> None:
        self.source_fps = source_fps
        self.limit = max(1, min(max_interval, math.floor(source_fps / min_detection_fps + 1e-9)))
        """The largest interval this camera may get."""
        self.interval = 1
        self.hold = HOLD_WINDOWS
        self.changes: deque[tuple[int, int]] = deque(maxlen=CHANGES_KEPT)
        """(frame index, interval) of the latest changes."""
        self._calm = 0  # windows in real time since the last change
        self._lowered = False  # the last change lowered the interval and is not yet confirmed

    def observe(self, frames: int, elapsed_s: float, dropped: int = 0, frame_index: int = 0) -> int:
        """One window: ``frames`` processed in ``elapsed_s`` seconds of wall clock with ``dropped``
        frames dropped unread; returns the interval from frame ``frame_index`` on."""
        rate = frames / elapsed_s if elapsed_s > 0 else math.inf
        behind = dropped > 0 or rate < self.source_fps * (1 - TOLERANCE)
        if behind:
            if self._lowered:  # the lower interval did not hold: wait longer before trying again
                self.hold = min(2 * self.hold, MAX_HOLD_WINDOWS)
            self._change(min(self.limit, self.interval + 1), frame_index)
            return self.interval
        self._calm += 1
        self._lowered = False
        if self.interval > 1:
            surely = rate * (self.interval - 1) / self.interval >= self.source_fps * (1 + TOLERANCE)
            if (surely and self._calm >= SETTLE_WINDOWS) or self._calm >= self.hold:
                self._change(self.interval - 1, frame_index)
                self._lowered = True
        return self.interval

    def _change(self, interval: int, frame_index: int) -> None:
        self._calm = 0
        if interval != self.interval:
            self.interval = interval
            self.changes.append((frame_index, interval))

    def report(self, frames_detected: int) -> dict[str, Any]:
        """What ``summary.json`` says of the choice (``detect_every_auto``)."""
        return {
            "detect_every": self.interval,
            "max_detect_every": self.limit,
            "frames_detected": frames_detected,
            "changes": [{"frame_index": index, "detect_every": interval} for index, interval in self.changes],
        }


class RateWindow:
    """Counts a camera's processed frames and feeds an :class:`IntervalChooser` every ``window_s``
    seconds of wall clock.

    Args:
        chooser: The chooser to feed.
        window_s: The window's length in seconds.
        clock: The wall clock (seconds; monotonic).
    """

    def __init__(self, chooser: IntervalChooser, window_s: float, clock: Any) -> None:
        self.chooser, self.window_s, self.clock = chooser, window_s, clock
        self._start_s: float | None = None
        self._frames = 0
        self._dropped_before = 0

    def frame(self, frame_index: int, dropped_total: int) -> int | None:
        """One frame processed (``dropped_total``: frames dropped so far); the new interval when a
        window closed, else None."""
        now = self.clock()
        if self._start_s is None:  # the window starts at the first frame, not while the model loads
            self._start_s, self._dropped_before = now, dropped_total
            return None
        self._frames += 1
        if now - self._start_s < self.window_s:
            return None
        interval = self.chooser.observe(
            self._frames, now - self._start_s, dropped_total - self._dropped_before, frame_index + 1
        )
        self._start_s, self._frames, self._dropped_before = now, 0, dropped_total
        return interval
