"""ByteTrack that keeps its tracks when objects move far between frames (low frame rates).

Ultralytics' ByteTrack associates by box overlap (IoU) with a Kalman prediction, tuned for 30 fps.
At 5-10 fps a vehicle can move more than its own length between frames, and three things break:

- A new track has no velocity, so its second sighting no longer overlaps its first box and it is
  never confirmed. Here a track seen once may also be matched by distance: up to
  ``max_speed_sizes_per_s`` of its own box sizes per second of elapsed time.
- The Kalman filter lags: its velocity moves a fifth of the way toward the observed change per
  update and its position trails the observation, so an object that speeds up in the image (a car
  approaching the camera) outruns its prediction. Here a matched track is put at its observed
  box, moving (x, y and height) at the displacement between its last two observations.
- A lost track can be re-found only by a high-score detection; near the frame edge or in bad
  light a vehicle is often seen only with a low score. Here the second (low-score) stage also
  re-finds lost tracks along their predicted path, with ByteTrack's own IoU >= 0.5 rule.

- A new track is dropped when it is missed on the very next frame, so one missed detection near
  the line loses the vehicle's crossing. Here it waits ``new_track_window_s`` for its second
  sighting (always at least the next frame, as in ByteTrack).

Both of ByteTrack's stages (high-score, then low-score detections) are otherwise unchanged.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from ultralytics.trackers.basetrack import TrackState
from ultralytics.trackers.byte_tracker import BYTETracker, STrack
from ultralytics.trackers.utils import matching


class ObservedTrack(STrack):
    """An STrack that sits at its latest observed box and moves at the velocity of its last two.

    Args:
        xywh: Centre x, y, width, height and the detection's index.
        score: Detection confidence.
        cls: Class id.
        step: The tracker step (frame) it was observed on.
        xyah: The box as centre x, y, aspect ratio (width / height) and height.
    """

    def __init__(self, xywh: np.ndarray, score: float, cls: Any, step: int, xyah: np.ndarray) -> None:
        super().__init__(xywh, score, cls)
        self.seen_step = step
        self.observations = 1
        self.observed_xyah = xyah
        self.previous_xyxy: np.ndarray | None = None
        """The observed box before the latest one (None after one observation)."""

    def update(self, new_track: STrack, frame_id: int) -> None:
        super().update(new_track, frame_id)
        assert isinstance(new_track, ObservedTrack)
        steps = max(1, new_track.seen_step - self.seen_step)
        velocity = (new_track.observed_xyah - self.observed_xyah) / steps
        self.mean[:4] = new_track.observed_xyah
        self.mean[[4, 5, 7]] = velocity[[0, 1, 3]]  # aspect ratio (6) keeps its Kalman rate
        self._observe(new_track)

    def re_activate(self, new_track: STrack, frame_id: int, new_id: bool = False) -> None:
        super().re_activate(new_track, frame_id, new_id)
        assert isinstance(new_track, ObservedTrack)
        self._observe(new_track)

    def _observe(self, new_track: ObservedTrack) -> None:
        x, y, aspect, height = self.observed_xyah
        width = aspect * height
        self.previous_xyxy = np.array([x - width / 2, y - height / 2, x + width / 2, y + height / 2])
        self.observed_xyah, self.seen_step = new_track.observed_xyah, new_track.seen_step
        self.observations += 1


class LargeMotionByteTrack(BYTETracker):
    """Ultralytics' BYTETracker with the three changes in this module's docstring.

    Args:
        args: BYTETracker's arguments.
        frame_s: Duration of one step (a source frame) in seconds.
        max_speed_sizes_per_s: How far a track seen once may have moved, in box sizes per second.
        new_track_window_s: How long a track seen once waits for its second sighting (at least one frame).
    """

    _TENTATIVE_THRESH = 0.7
    """ByteTrack's cost limit for tentative tracks: a detection at the full reach costs this much."""

    def __init__(
        self, args: SimpleNamespace, frame_s: float, max_speed_sizes_per_s: float, new_track_window_s: float
    ) -> None:
        super().__init__(args)
        self.frame_s = frame_s
        self.new_track_window_s = new_track_window_s
        self.max_speed_sizes_per_s = max_speed_sizes_per_s
        self.step = 0
        """Frames advanced, detected or only predicted (``--detect-every``)."""

    def init_track(self, results: Any, img: np.ndarray | None = None) -> list[STrack]:
        xywh = np.column_stack((results.xywh, np.arange(len(results))))
        xyah = np.column_stack((xywh[:, :2], xywh[:, 2] / xywh[:, 3], xywh[:, 3]))
        return [
            ObservedTrack(box, s, c, self.step, a)
            for box, s, c, a in zip(xywh, results.conf, results.cls, xyah, strict=True)
        ]

    def get_dists(self, tracks: list[STrack], detections: list[STrack]) -> np.ndarray:
        """IoU cost, or for a track seen only once the distance cost when lower."""
        dists = super().get_dists(tracks, detections)
        rows = [i for i, track in enumerate(tracks) if getattr(track, "observations", 0) == 1]
        if rows and detections:
            dists[rows] = np.minimum(dists[rows], self._distance_costs([tracks[i] for i in rows], detections))
        return dists

    def _distance_costs(self, tracks: list[STrack], detections: list[STrack]) -> np.ndarray:
        """Centre distance in box sizes (per axis, the pair's mean size) over the reach; a detection
        at the reach costs ``_TENTATIVE_THRESH``."""
        seen = np.array([t.observed_xyah for t in tracks])  # type: ignore[attr-defined]
        new = np.array([d.observed_xyah for d in detections])  # type: ignore[attr-defined]
        steps = np.array([max(1, self.step - t.seen_step) for t in tracks])  # type: ignore[attr-defined]
        seen_wh = np.column_stack((seen[:, 2] * seen[:, 3], seen[:, 3]))
        new_wh = np.column_stack((new[:, 2] * new[:, 3], new[:, 3]))
        size = (seen_wh[:, None, :] + new_wh[None, :, :]) / 2
        offset = (new[None, :, :2] - seen[:, None, :2]) / size
        reach = self.max_speed_sizes_per_s * self.frame_s * steps
        return self._TENTATIVE_THRESH * np.hypot(offset[..., 0], offset[..., 1]) / reach[:, None]

    def _unconfirmed_association(
        self,
        unconfirmed: list[STrack],
        u_detection: list[int],
        detections: list[STrack],
        activated: list[STrack],
        removed: list[STrack],
    ) -> tuple[list[int], list[STrack]]:
        """ByteTrack's, but a track seen once and missed is kept until ``new_track_window_s`` has passed."""
        before = len(removed)
        result = super()._unconfirmed_association(unconfirmed, u_detection, detections, activated, removed)
        for track in removed[before:]:
            if (self.step - track.seen_step) * self.frame_s <= self.new_track_window_s + 1e-9:  # type: ignore[attr-defined]
                track.state = TrackState.Tracked  # still tentative: stays among the tracked, unconfirmed
        removed[before:] = [t for t in removed[before:] if t.state == TrackState.Removed]
        return result

    def _second_association(
        self,
        strack_pool: list[STrack],
        u_track: list[int],
        detections_second: list[STrack],
        activated: list[STrack],
        refind: list[STrack],
        lost: list[STrack],
    ) -> None:
        """ByteTrack's low-score stage, then the same (IoU >= 0.5) for tracks already lost."""
        was_lost = [strack_pool[i] for i in u_track if strack_pool[i].state == TrackState.Lost]
        before = len(activated) + len(refind)
        super()._second_association(strack_pool, u_track, detections_second, activated, refind, lost)
        used = {track.idx for track in (activated + refind)[before:]}
        left = [d for d in detections_second if d.idx not in used]
        if was_lost and left:
            matches, _, _ = matching.linear_assignment(matching.iou_distance(was_lost, left), thresh=0.5)
            self._apply_matches(matches, was_lost, left, activated, refind)
