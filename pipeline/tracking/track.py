"""A detection as the tracker reads it, and a track: its Kalman state, its life cycle and its
observations (the boxes it was actually seen at, which the low-frame-rate association uses)."""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

import numpy as np

from pipeline.tracking.kalman import KalmanFilter


class TrackState(IntEnum):
    """Where a track is in its life.

    ``NEW`` (seen once, not yet reported) becomes ``TRACKED`` on its second sighting or ``REMOVED``;
    a ``TRACKED`` track missed on a frame is ``LOST`` until it is re-found or its buffer runs out.
    """

    NEW = 0
    TRACKED = 1
    LOST = 2
    REMOVED = 3


class Detection:
    """One box of a frame's detections, in the forms the tracker needs.

    The Kalman filter is fed ByteTrack's float32 box, the observation bookkeeping the float64 one,
    as the tracker always has: the two differ in the last bits.

    Args:
        xywh: Centre x, centre y, width, height (float32, as the detector gave it).
        score: Detection confidence.
        index: The detection's row in the frame's detections.
        step: The tracker step (source frame) it was seen on.
    """

    def __init__(self, xywh: np.ndarray, score: np.float32, index: int, step: int) -> None:
        xywh = xywh.astype(np.float64)
        x, y, width, height = xywh
        self.tlwh = np.array([x - width / 2, y - height / 2, width, height], dtype=np.float32)
        """Top-left x, y, width, height (float32)."""
        self.observed_xyah = np.array([x, y, width / height, height])
        """Centre x, y, aspect ratio (width / height), height (float64)."""
        self.score, self.index, self.step = score, index, step

    @property
    def measurement(self) -> np.ndarray:
        """The box as the Kalman filter observes it: ``(x, y, aspect, height)``, float32."""
        xyah = self.tlwh.copy()
        xyah[:2] += xyah[2:] / 2
        xyah[2] /= xyah[3]
        return xyah

    @property
    def xyxy(self) -> np.ndarray:
        """Corners ``(x1, y1, x2, y2)``, float32."""
        xyxy = self.tlwh.copy()
        xyxy[2:] += xyxy[:2]
        return xyxy


Motion = Callable[["Track", Detection], None]
"""How a track's state moves once the Kalman filter has corrected it with a matched detection (see
:mod:`pipeline.tracking.motion`); it may read the track's previous observation, not yet replaced."""


class Track:
    """One object followed from frame to frame.

    Args:
        track_id: Its ID, unique within the tracker.
        detection: The detection that starts it.
        kalman: The filter that predicts and corrects its state.
        frame: The tracker update it starts on.
        state: ``NEW``, or ``TRACKED`` for a track confirmed at once.
    """

    def __init__(
        self, track_id: int, detection: Detection, kalman: KalmanFilter, frame: int, state: TrackState
    ) -> None:
        self.track_id, self.kalman, self.state = track_id, kalman, state
        self.mean, self.covariance = kalman.initiate(detection.measurement)
        self.score, self.index = detection.score, detection.index
        self.start_frame = self.last_frame = frame
        """Tracker updates (frames with detections) it started on and was last matched on."""
        self.observations = 1
        self.observed_xyah, self.seen_step = detection.observed_xyah, detection.step
        """Its latest observed box (see :attr:`Detection.observed_xyah`) and the step it was seen on."""
        self.previous_xyxy: np.ndarray | None = None
        """The observed box before the latest one (None after one observation; on the second, the
        :meth:`adopt_origin` box if there is one)."""
        self.previous_step: int | None = None
        """The step :attr:`previous_xyxy` was seen on."""

    @property
    def xyxy(self) -> np.ndarray:
        """Corners ``(x1, y1, x2, y2)`` of the state's box (float64)."""
        box = self.mean[:4].copy()
        box[2] *= box[3]
        box[:2] -= box[2:] / 2
        box[2:] += box[:2]
        return box

    def update(self, detection: Detection, frame: int, motion: Motion) -> None:
        """Match a new or tracked track with ``detection``: correct its state, then apply ``motion``."""
        self.mean, self.covariance = self.kalman.update(self.mean, self.covariance, detection.measurement)
        motion(self, detection)
        self._observe(detection, frame)

    def reactivate(self, detection: Detection, frame: int) -> None:
        """Re-find a lost track at ``detection``: the Kalman correction alone, no ``motion``."""
        self.mean, self.covariance = self.kalman.update(self.mean, self.covariance, detection.measurement)
        self._observe(detection, frame)

    def adopt_origin(self, detection: Detection) -> None:
        """Start a new track's path at ``detection``, a weak box of an earlier step that this track's
        first box can have come from: reported as its previous box when it is confirmed, so a
        vehicle seen with low scores until just past a line still crosses it."""
        self.previous_xyxy, self.previous_step = detection.xyxy.astype(np.float64), detection.step

    def _observe(self, detection: Detection, frame: int) -> None:
        if self.observations > 1 or self.previous_xyxy is None:
            x, y, aspect, height = self.observed_xyah
            width = aspect * height
            self.previous_xyxy = np.array([x - width / 2, y - height / 2, x + width / 2, y + height / 2])
            self.previous_step = self.seen_step
        self.observed_xyah, self.seen_step = detection.observed_xyah, detection.step
        self.observations += 1
        self.state, self.last_frame = TrackState.TRACKED, frame
        self.score, self.index = detection.score, detection.index
