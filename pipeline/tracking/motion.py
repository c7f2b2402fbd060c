"""Association and motion that keep tracks when objects move far between frames (low frame rates).

ByteTrack associates by box overlap (IoU) with a Kalman prediction, tuned for 30 fps. At 5-10 fps a
vehicle can move more than its own length between frames, and four things break; the tracker
(:class:`pipeline.tracking.ByteTrackTracker`) uses these remedies:

- A new track has no velocity, so its second sighting no longer overlaps its first box and it is
  never confirmed. :class:`ReachCost` also matches a track seen once by distance: up to
  ``max_speed_sizes_per_s`` of its own box sizes per second of elapsed time.
- The Kalman filter lags: its velocity moves a fifth of the way toward the observed change per
  update and its position trails the observation, so an object that speeds up in the image (a car
  approaching the camera) outruns its prediction. :func:`observed_motion` puts a matched track at
  its observed box, moving (x, y and height) at the displacement between its last two observations.
- A lost track can be re-found only by a high-score detection; near the frame edge or in bad
  light a vehicle is often seen only with a low score. The tracker's second (low-score) stage also
  re-finds lost tracks along their predicted path, with ByteTrack's own IoU >= 0.5 rule.
- A new track is dropped when it is missed on the very next frame, so one missed detection near
  the line loses the vehicle's crossing. The tracker keeps it ``new_track_window_s`` for its second
  sighting (always at least the next frame, as in ByteTrack).

The first two are strategies the tracker takes (``cost`` and ``motion``); :class:`IouCost` and
:func:`kalman_motion` are ByteTrack's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.tracking.matching import Cost
from pipeline.tracking.track import Detection, Track

TENTATIVE_THRESH = 0.7
"""ByteTrack's cost limit for matching a track seen once (its second sighting)."""

MAX_SIZE_RATIO = 2.0
"""Largest ratio of widths or of heights at which two boxes can be one object matched by distance:
between two sightings a fraction of a second apart a vehicle's box does not double in size, but a
far car's box can lie within reach of a near one's."""


class ReachCost:
    """A cost that also matches a track seen only once by the distance it could have travelled.

    For such a track the cost is the lower of ``base`` and the centre distance in box sizes (per
    axis, the mean of the two boxes' sizes) over the reach, scaled so that a detection at the full
    reach costs :data:`TENTATIVE_THRESH`. The reach is ``max_speed_sizes_per_s`` times the time
    between the track's sighting and the detection's (either way round). Boxes whose widths or
    heights differ by more than :data:`MAX_SIZE_RATIO` are out of reach.

    Args:
        base: The cost of every pair (ByteTrack's :class:`~pipeline.tracking.matching.IouCost`).
        max_speed_sizes_per_s: How far a track seen once may have moved, in box sizes per second.
        frame_s: Duration of one step (a source frame) in seconds.
    """

    def __init__(self, base: Cost, max_speed_sizes_per_s: float, frame_s: float) -> None:
        self.base, self.max_speed_sizes_per_s, self.frame_s = base, max_speed_sizes_per_s, frame_s

    def __call__(self, tracks: Sequence[Track], detections: Sequence[Detection]) -> np.ndarray:
        cost = self.base(tracks, detections)
        rows = [i for i, track in enumerate(tracks) if track.observations == 1]
        if rows and detections:
            cost[rows] = np.minimum(cost[rows], self.distance_cost([tracks[i] for i in rows], detections))
        return cost

    def distance_cost(self, tracks: Sequence[Track], detections: Sequence[Detection]) -> np.ndarray:
        """:data:`TENTATIVE_THRESH` times the centre distance in box sizes over the reach (float64);
        above :data:`TENTATIVE_THRESH` for boxes of unlike sizes.

        Example:
            >>> from pipeline.tracking.kalman import KalmanFilter
            >>> from pipeline.tracking.track import TrackState
            >>> seen = Track(1, Detection(np.array([100, 100, 40, 30]), 0.9, 0, 0), KalmanFilter(), 1, TrackState.NEW)
            >>> near = Detection(np.array([120, 100, 40, 30]), 0.9, 0, 1)  # half a width away
            >>> small = Detection(np.array([120, 100, 15, 12]), 0.9, 1, 1)  # as near, a third the size
            >>> cost = ReachCost(lambda t, d: np.ones((len(t), len(d))), 10.0, 0.1).distance_cost([seen], [near, small])
            >>> cost.round(2).tolist()
            [[0.35, 1.7]]
        """
        seen = np.array([t.observed_xyah for t in tracks])
        new = np.array([d.observed_xyah for d in detections])
        seen_steps = np.array([t.seen_step for t in tracks])
        steps = np.maximum(1, np.abs(np.array([d.step for d in detections]) - seen_steps[:, None]))
        seen_wh = np.column_stack((seen[:, 2] * seen[:, 3], seen[:, 3]))
        new_wh = np.column_stack((new[:, 2] * new[:, 3], new[:, 3]))
        size = (seen_wh[:, None, :] + new_wh[None, :, :]) / 2
        offset = (new[None, :, :2] - seen[:, None, :2]) / size
        reach = self.max_speed_sizes_per_s * self.frame_s * steps
        cost = TENTATIVE_THRESH * np.hypot(offset[..., 0], offset[..., 1]) / reach
        ratio = seen_wh[:, None, :] / new_wh[None, :, :]
        cost[((ratio * MAX_SIZE_RATIO < 1) | (ratio > MAX_SIZE_RATIO)).any(axis=2)] = TENTATIVE_THRESH + 1
        return cost


def kalman_motion(track: Track, detection: Detection) -> None:
    """ByteTrack's motion: the Kalman filter's corrected state as it is."""


def observed_motion(track: Track, detection: Detection) -> None:
    """Put ``track`` at the observed box of ``detection``, moving at the displacement per step
    since its previous observation (x, y and height; the aspect ratio keeps its Kalman rate)."""
    steps = max(1, detection.step - track.seen_step)
    velocity = (detection.observed_xyah - track.observed_xyah) / steps
    track.mean[:4] = detection.observed_xyah
    track.mean[[4, 5, 7]] = velocity[[0, 1, 3]]
