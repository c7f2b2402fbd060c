"""Motion trails that fade out: where each object was over the last second or two.

supervision's ``TraceAnnotator`` draws a fixed-length polyline of uniform weight; this one keeps
timestamped points, so the trail's length is a duration of video, and draws older segments
thinner and more transparent.

Example:
    >>> import numpy as np
    >>> trails = FadingTraceAnnotator(trail_seconds=1.0, color=sv.Color.WHITE)
    >>> scene = np.zeros((100, 200, 3), np.uint8)
    >>> for frame_index in range(10):
    ...     detections = sv.Detections(
    ...         xyxy=np.array([[10.0 + 10 * frame_index, 20.0, 30.0 + 10 * frame_index, 50.0]]),
    ...         tracker_id=np.array([1]))
    ...     scene = trails.annotate(np.zeros_like(scene), detections, timestamp_s=frame_index / 10)
    >>> bool(scene[50, 110].max() > scene[50, 30].max())  # head brighter than tail
    True
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv


@dataclass
class _Trail:
    points: deque[tuple[float, int, int]]
    """(timestamp_s, x, y), oldest first."""
    color: tuple[int, int, int]


class FadingTraceAnnotator:
    """Draws each track's recent path, fading from opaque and thick at the head to nothing at
    ``trail_seconds`` in the past.

    Trails of tracks that left the frame keep fading until they are older than ``trail_seconds``,
    then their state is dropped, so memory is bounded by the objects of the last ``trail_seconds``.

    Args:
        trail_seconds: Length of a trail in seconds of video.
        thickness: Line width at the head in pixels; the tail narrows to 1.
        color: A color, or a palette indexed by ``tracker_id`` (matching the box colors).
        position: The box anchor the trail follows.
        fade_levels: Number of opacity steps (each costs one blend of the trail's bounding box).
        max_points: Cap on points kept per track, whatever the frame rate.
    """

    def __init__(
        self,
        trail_seconds: float = 1.5,
        thickness: int = 4,
        color: sv.Color | sv.ColorPalette = sv.ColorPalette.DEFAULT,
        position: sv.Position = sv.Position.BOTTOM_CENTER,
        fade_levels: int = 6,
        max_points: int = 512,
    ) -> None:
        self.trail_seconds = trail_seconds
        self.thickness = thickness
        self.color = color
        self.position = position
        self.fade_levels = fade_levels
        self.max_points = max_points
        self._trails: dict[int, _Trail] = {}

    @property
    def tracks_held(self) -> int:
        """Number of trails in memory."""
        return len(self._trails)

    def _color_for(self, track_id: int) -> tuple[int, int, int]:
        color = self.color.by_idx(track_id) if isinstance(self.color, sv.ColorPalette) else self.color
        return color.as_bgr()

    def update(self, detections: sv.Detections, timestamp_s: float) -> None:
        """Record this frame's anchors and forget points older than ``trail_seconds``."""
        if detections.tracker_id is not None and len(detections):
            anchors = detections.get_anchors_coordinates(self.position)
            for track_id, (x, y) in zip(detections.tracker_id.tolist(), anchors, strict=True):
                trail = self._trails.get(track_id)
                if trail is None:
                    trail = self._trails[track_id] = _Trail(deque(maxlen=self.max_points), self._color_for(track_id))
                trail.points.append((timestamp_s, round(float(x)), round(float(y))))
        oldest = timestamp_s - self.trail_seconds
        for track_id in list(self._trails):
            points = self._trails[track_id].points
            while points and points[0][0] < oldest:
                points.popleft()
            if not points:
                del self._trails[track_id]

    def annotate(self, scene: np.ndarray, detections: sv.Detections, timestamp_s: float) -> np.ndarray:
        """Update the trails with ``detections`` and draw all of them on ``scene`` (in place).

        Args:
            scene: BGR image to draw on.
            detections: This frame's tracked detections.
            timestamp_s: This frame's timestamp; ages are measured from it.

        Returns:
            ``scene``, annotated.
        """
        self.update(detections, timestamp_s)
        # Runs of consecutive segments that share an opacity level and a width, grouped by level:
        # one polyline per run and one blend per level, instead of a call per segment.
        levels: list[list[tuple[np.ndarray, tuple[int, int, int], int]]] = [[] for _ in range(self.fade_levels)]
        for trail in self._trails.values():
            if len(trail.points) < 2:
                continue
            points = np.array(trail.points)
            # A segment's age is its newer end's: 1 at the head, 0 at trail_seconds ago.
            freshness = 1.0 - (timestamp_s - points[1:, 0]) / self.trail_seconds
            level = np.minimum(self.fade_levels - 1, (freshness * self.fade_levels).astype(np.int64))
            width = np.maximum(1, np.rint(self.thickness * freshness)).astype(np.int64)
            # Invisible segments (freshness 0) get key -1, so they form runs of their own.
            key = np.where(freshness > 0, level * (self.thickness + 2) + width, -1)
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            ends = np.r_[starts[1:], len(key)]
            xy = points[:, 1:].astype(np.int32)
            for first, end in zip(starts.tolist(), ends.tolist(), strict=True):
                if key[first] >= 0:  # segments first..end-1 join points first..end
                    levels[int(level[first])].append((xy[first : end + 1], trail.color, int(width[first])))
        height, width_px = scene.shape[:2]
        pad = self.thickness + 1
        for level_index, runs in enumerate(levels):
            if not runs:
                continue
            alpha = (level_index + 1) / self.fade_levels
            corners = np.concatenate([run for run, _, _ in runs])
            x_lo, y_lo = np.maximum(0, corners.min(axis=0) - pad).tolist()
            x_hi, y_hi = corners.max(axis=0) + pad + 1
            x_hi, y_hi = min(width_px, int(x_hi)), min(height, int(y_hi))
            if x_lo >= x_hi or y_lo >= y_hi:
                continue
            region = scene[y_lo:y_hi, x_lo:x_hi]
            overlay = region.copy()
            offset = np.array([x_lo, y_lo], np.int32)
            for run, color, line_width in runs:
                cv2.polylines(overlay, [run - offset], False, color, line_width, cv2.LINE_AA)
            if math.isclose(alpha, 1.0):
                region[:] = overlay
            else:
                cv2.addWeighted(overlay, alpha, region, 1 - alpha, 0, dst=region)
        return scene
