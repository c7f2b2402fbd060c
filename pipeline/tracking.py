"""The tracking stage: Ultralytics' ByteTrack (``lap`` assignment) over ``sv.Detections``.

Ultralytics' own default tracker is not ByteTrack, and its ``track_buffer`` counts frames; this
wrapper always uses ByteTrack and takes the buffer in seconds of video.

Example:
    >>> tracker = ByteTrackTracker(TrackerConfig(track_buffer_s=1.0), fps=30.0)
    >>> detections = sv.Detections(
    ...     xyxy=np.array([[10.0, 10.0, 50.0, 40.0]]), confidence=np.array([0.9]), class_id=np.array([2]))
    >>> tracker.update(detections).tracker_id
    array([1])
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import supervision as sv
from ultralytics.trackers.byte_tracker import BYTETracker

from pipeline.config import TrackerConfig


class _BoxesView:
    """The minimal ``Boxes``-like object BYTETracker reads: ``conf``, ``cls``, ``xywh`` and boolean indexing."""

    def __init__(self, xywh: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xywh, self.conf, self.cls = xywh, conf, cls

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: np.ndarray) -> _BoxesView:
        return _BoxesView(self.xywh[index], self.conf[index], self.cls[index])


class ByteTrackTracker:
    """Assigns persistent ``tracker_id`` values to detections, frame by frame.

    Only detections matched to a confirmed track are returned, with their own (not Kalman-smoothed)
    boxes and masks, so drawing and counting see what the model saw.

    Args:
        config: Thresholds and the lost-track buffer in seconds.
        fps: The source's frame rate, to turn the buffer into frames.
    """

    def __init__(self, config: TrackerConfig, fps: float) -> None:
        self.buffer_frames = max(1, round(config.track_buffer_s * fps))
        args = SimpleNamespace(
            track_high_thresh=config.track_high_thresh,
            track_low_thresh=config.track_low_thresh,
            new_track_thresh=config.new_track_thresh,
            track_buffer=self.buffer_frames,
            match_thresh=config.match_thresh,
            fuse_score=config.fuse_score,
        )
        self._tracker = BYTETracker(args)

    def update(self, detections: sv.Detections) -> sv.Detections:
        """Track one frame's detections; returns the tracked subset with ``tracker_id`` set."""
        xyxy = detections.xyxy.astype(np.float32)
        xywh = np.column_stack(((xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2])).reshape(-1, 4)
        confidence = detections.confidence if detections.confidence is not None else np.ones(len(detections))
        class_id = detections.class_id if detections.class_id is not None else np.zeros(len(detections), int)
        tracks = self._tracker.update(_BoxesView(xywh, confidence.astype(np.float32), class_id.astype(np.float32)))
        tracks = tracks.reshape(-1, 8)  # an empty result comes back 1-D
        tracked = detections[tracks[:, 7].astype(int)]  # keeps masks and data columns, even when empty
        tracked.tracker_id = tracks[:, 4].astype(int)
        return tracked
