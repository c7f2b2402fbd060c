"""Ground speed from a 4-point perspective calibration.

Four image points and the same four points on the ground in metres define a homography; each
track's anchor is mapped to the ground plane, and its speed is the slope of a straight-line fit of
position against time over the last ``window_s`` (smoothing out box jitter). Speeds above
``max_kmh`` are physically implausible here (an ID switch, a bad box) and are rejected, not
clipped.

Example:
    >>> import numpy as np
    >>> # 10 px = 1 m in both directions
    >>> speed = SpeedEstimator([(0, 0), (100, 0), (100, 100), (0, 100)], [(0, 0), (10, 0), (10, 10), (0, 10)])
    >>> for frame_index in range(31):  # 2.5 m/s = 9 km/h along x, at 30 fps
    ...     x = 10 + 25 * frame_index / 30
    ...     detections = sv.Detections(xyxy=np.array([[x - 2, 40.0, x + 2, 50.0]]), tracker_id=np.array([1]))
    ...     speeds = speed.update(detections, frame_index / 30)
    >>> round(speeds[1], 3)
    9.0
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import cv2
import numpy as np
import supervision as sv

from pipeline.analytics.lines import tracked_anchors
from pipeline.geometry import Point


class SpeedEstimator:
    """Per-track speed in km/h on the ground plane.

    Args:
        image_points: Four points in the image (pixels).
        world_points: The same four points on the ground (metres).
        window_s: Time span of the fit.
        max_kmh: Speeds above this are rejected (reported as None).
        min_span_s: Shortest history that gives a speed (a fresh track has none yet).
        forget_after_s: Drop a track's history once unseen for this long.
    """

    def __init__(
        self,
        image_points: Sequence[Point],
        world_points: Sequence[Point],
        window_s: float = 1.0,
        max_kmh: float = 250.0,
        min_span_s: float = 0.3,
        forget_after_s: float = 2.0,
    ) -> None:
        self.homography = cv2.getPerspectiveTransform(
            np.asarray(image_points, np.float32), np.asarray(world_points, np.float32)
        )
        self.window_s = window_s
        self.max_kmh = max_kmh
        self.min_span_s = min_span_s
        self.forget_after_s = forget_after_s
        self._history: dict[int, deque[tuple[float, float, float]]] = {}
        self.speeds: dict[int, float | None] = {}
        """Latest speed per track (None while unknown or implausible)."""

    def rescale(self, sx: float, sy: float) -> None:
        """Follow a change of the source's resolution: the same ground, seen at another pixel scale."""
        self.homography = self.homography @ np.diag([1 / sx, 1 / sy, 1.0])

    @property
    def tracks_held(self) -> int:
        return len(self._history)

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) image points to (N, 2) ground points in metres."""
        return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), self.homography).reshape(-1, 2)

    def update(self, detections: sv.Detections, timestamp_s: float) -> dict[int, float | None]:
        """Add one frame; returns the speed of each track seen on it."""
        tracked = tracked_anchors(detections)
        current: dict[int, float | None] = {}
        if tracked:
            world = self.to_world(np.array([point for _, point, _ in tracked]))
            for (track_id, _, _), (wx, wy) in zip(tracked, world, strict=True):
                history = self._history.setdefault(track_id, deque(maxlen=1024))
                history.append((timestamp_s, float(wx), float(wy)))
                while history[0][0] < timestamp_s - self.window_s - 1e-9:
                    history.popleft()
                current[track_id] = self._speed(history)
        for track_id in [t for t, h in self._history.items() if timestamp_s - h[-1][0] > self.forget_after_s]:
            del self._history[track_id]
            self.speeds.pop(track_id, None)
        self.speeds.update(current)
        return current

    def _speed(self, history: deque[tuple[float, float, float]]) -> float | None:
        if history[-1][0] - history[0][0] < self.min_span_s or len(history) < 3:
            return None
        samples = np.asarray(history)
        t = samples[:, 0] - samples[0, 0]
        velocity_x = np.polyfit(t, samples[:, 1], 1)[0]
        velocity_y = np.polyfit(t, samples[:, 2], 1)[0]
        kmh = float(np.hypot(velocity_x, velocity_y) * 3.6)
        return kmh if kmh <= self.max_kmh else None
