"""ByteTrack's association: each frame's detections matched to the tracks in two stages, and the
track pools (new and tracked, lost, removed) kept from frame to frame.

ByteTrack (Zhang et al., 2022) matches high-score detections first, to the confirmed and lost
tracks; then the low-score ones, by overlap alone, to the tracks still unmatched, so a weak box
extends a track but never starts one. New tracks wait for their second sighting among the
high-score detections left. The low-frame-rate extensions are in :mod:`pipeline.tracking.motion`.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable

import numpy as np

from pipeline.config import TrackerConfig
from pipeline.tracking.kalman import KalmanFilter
from pipeline.tracking.matching import Cost, linear_assignment, track_iou_distance
from pipeline.tracking.motion import TENTATIVE_THRESH, ReachCost
from pipeline.tracking.track import Detection, Motion, Track, TrackState

LOW_STAGE_THRESH = 0.5
"""Cost limit (IoU >= 0.5) of the low-score stage: weak boxes extend only tracks they overlap well."""
DUPLICATE_THRESH = 0.15
"""A tracked and a lost track closer than this (IoU > 0.85) are one object seen twice."""
REMOVED_MEMORY = 1000
"""How many removed track IDs are remembered (a lost track whose ID is among them is dropped)."""


class ByteTrack:
    """The track pools and the two-stage association that updates them.

    Args:
        config: Thresholds and ``new_track_window_s``.
        frame_s: Duration of one step (a source frame) in seconds.
        lost_buffer_steps: Steps (source frames) a lost track is kept for after it was last seen.
        cost: The cost of the high-score stage and of new tracks' second sighting.
        motion: How a matched track moves on after its Kalman correction.
    """

    def __init__(
        self, config: TrackerConfig, frame_s: float, lost_buffer_steps: int, cost: Cost, motion: Motion
    ) -> None:
        self.config, self.frame_s, self.lost_buffer_steps = config, frame_s, lost_buffer_steps
        self.cost, self.motion = cost, motion
        self.kalman = KalmanFilter()
        self.tracked: list[Track] = []
        """New and tracked tracks, in the order they were first matched (the output order)."""
        self.lost: list[Track] = []
        self.removed_ids: deque[int] = deque(maxlen=REMOVED_MEMORY)
        self._ids = itertools.count(1)
        self.updates = 0
        """Frames with detections so far (ByteTrack's frame count: the lost buffer counts these)."""
        self.step = 0
        """Frames advanced, detected or only predicted (``--detect-every``)."""
        self._weak_left: list[Detection] = []
        """The low-score detections no track took on the last update: where a track born on this
        one may have come from (:meth:`_adopt_origins`)."""

    @property
    def confirmed(self) -> list[Track]:
        """The tracks to report: tracked, not new."""
        return [t for t in self.tracked if t.state == TrackState.TRACKED]

    def end_tracks(self) -> None:
        """End every track (new, tracked and lost) at once; the IDs of tracks to come go on from the
        last, so that no later track takes over what was kept about an ended one."""
        for track in self.tracked + self.lost:
            track.state = TrackState.REMOVED
            self.removed_ids.append(track.track_id)
        self.tracked, self.lost, self._weak_left = [], [], []

    def predict(self) -> None:
        """Advance the confirmed and lost tracks one frame without detections."""
        self.step += 1
        _predict(self.kalman, self.confirmed + self.lost)

    def update(self, xywh: np.ndarray, confidence: np.ndarray) -> None:
        """Match one frame's detections to the tracks.

        Args:
            xywh: N x 4 boxes as centre x, centre y, width, height (float32).
            confidence: Their N scores (float32).
        """
        self.updates += 1
        self.step += 1
        high, low = _split(xywh, confidence, self.config, self.step)
        new = [t for t in self.tracked if t.state == TrackState.NEW]
        pool = _joined(self.confirmed, self.lost)
        _predict(self.kalman, pool)
        activated: list[Track] = []
        refound: list[Track] = []

        # Stage 1: high-score detections with the confirmed and lost tracks.
        matches, unmatched_tracks, unmatched_high = linear_assignment(self.cost(pool, high), self.config.match_thresh)
        for t, d in matches:
            self._match(pool[t], high[d], activated, refound)
        # Stage 2: low-score detections with the tracks left unmatched, by overlap alone.
        lost, weak_left = self._low_stage([pool[i] for i in unmatched_tracks], low, activated, refound)
        # New tracks: their second sighting among the high-score detections left; new ones from the rest.
        born = len(activated)
        removed = self._confirm_new(new, [high[i] for i in unmatched_high], activated)
        self._adopt_origins([t for t in activated[born:] if t.observations == 1], self._weak_left)
        self._weak_left = weak_left
        for track in self.lost:
            if self.step - track.seen_step > self.lost_buffer_steps:
                track.state = TrackState.REMOVED
                removed.append(track)
        self.tracked, self.lost = _merged(self.tracked, self.lost, activated, refound, lost, self.removed_ids)
        self.removed_ids.extend(t.track_id for t in removed)

    def _low_stage(
        self, unmatched: list[Track], low: list[Detection], activated: list[Track], refound: list[Track]
    ) -> tuple[list[Track], list[Detection]]:
        """ByteTrack's second stage, then lost tracks re-found by the weak boxes left (motion.py);
        returns the tracks lost on this frame and the weak boxes no track took."""
        remaining = [t for t in unmatched if t.state == TrackState.TRACKED]
        was_lost = [t for t in unmatched if t.state == TrackState.LOST]
        matches, unmatched_remaining, unmatched_low = linear_assignment(
            track_iou_distance(remaining, low), LOW_STAGE_THRESH
        )
        for t, d in matches:
            self._match(remaining[t], low[d], activated, refound)
        for i in unmatched_remaining:
            remaining[i].state = TrackState.LOST
        left = [low[i] for i in unmatched_low]
        matches, _, unmatched_left = linear_assignment(track_iou_distance(was_lost, left), LOW_STAGE_THRESH)
        for t, d in matches:
            self._match(was_lost[t], left[d], activated, refound)
        return [remaining[i] for i in unmatched_remaining], [left[i] for i in unmatched_left]

    def _adopt_origins(self, born: list[Track], weak: list[Detection]) -> None:
        """Give each track born on this update the weak box of the last update it can have come from
        (within :class:`ReachCost`'s reach of its first box, of a like size), as the start of its
        path: ByteTrack never starts a track on a weak box, so at a low frame rate a vehicle seen
        with low scores up to a line and confidently just past it would cross it unseen."""
        if not born or not weak or not isinstance(self.cost, ReachCost):
            return
        matches, _, _ = linear_assignment(self.cost.distance_cost(born, weak), TENTATIVE_THRESH)
        for t, d in matches:
            born[t].adopt_origin(weak[d])

    def _confirm_new(self, new: list[Track], high: list[Detection], activated: list[Track]) -> list[Track]:
        """Match new tracks to their second sighting, start tracks on the confident detections left;
        returns the new tracks removed (unseen for longer than ``new_track_window_s``)."""
        matches, unmatched_new, unmatched_high = linear_assignment(self.cost(new, high), TENTATIVE_THRESH)
        for t, d in matches:
            new[t].update(high[d], self.updates, self.motion)
            activated.append(new[t])
        removed = []
        for i in unmatched_new:  # kept for new_track_window_s (at least the next frame), then dropped
            if (self.step - new[i].seen_step) * self.frame_s > self.config.new_track_window_s + 1e-9:
                new[i].state = TrackState.REMOVED
                removed.append(new[i])
        # ByteTrack confirms the tracks of its first frame at once: there is nothing to confirm them by.
        state = TrackState.TRACKED if self.updates == 1 else TrackState.NEW
        for i in unmatched_high:
            if high[i].score >= self.config.new_track_thresh:
                activated.append(Track(next(self._ids), high[i], self.kalman, self.updates, state))
        return removed

    def _match(self, track: Track, detection: Detection, activated: list[Track], refound: list[Track]) -> None:
        if track.state == TrackState.TRACKED:
            track.update(detection, self.updates, self.motion)
            activated.append(track)
        else:  # lost, or removed on the last update and still in the lost pool
            track.reactivate(detection, self.updates)
            refound.append(track)


def _split(
    xywh: np.ndarray, confidence: np.ndarray, config: TrackerConfig, step: int
) -> tuple[list[Detection], list[Detection]]:
    """The high-score and the low-score detections (boxes without area are left out)."""
    valid = (xywh[:, 2] > 0) & (xywh[:, 3] > 0)  # the Kalman state divides by the height
    high = valid & (confidence >= config.track_high_thresh)
    low = valid & (confidence > config.track_low_thresh) & (confidence < config.track_high_thresh)
    return (
        [Detection(xywh[i], confidence[i], int(i), step) for i in np.flatnonzero(high)],
        [Detection(xywh[i], confidence[i], int(i), step) for i in np.flatnonzero(low)],
    )


def _merged(
    tracked: list[Track],
    lost: list[Track],
    activated: list[Track],
    refound: list[Track],
    lost_now: list[Track],
    removed_ids: Iterable[int],
) -> tuple[list[Track], list[Track]]:
    """ByteTrack's bookkeeping of the pools at the end of an update: the new tracked and lost pools.

    A lost track that runs out of buffer stays in the lost pool (removed) until the next update,
    and can still be re-found there, as in ByteTrack's reference implementation: ``removed_ids``
    are those of earlier updates.
    """
    tracked = [t for t in tracked if t.state in (TrackState.NEW, TrackState.TRACKED)]
    tracked = _joined(_joined(tracked, activated), refound)
    lost = _without(lost, (t.track_id for t in tracked)) + lost_now
    return _without_duplicates(tracked, _without(lost, removed_ids))


def _predict(kalman: KalmanFilter, tracks: list[Track]) -> None:
    """Advance ``tracks`` one frame with the Kalman filter; tracks not tracked keep their height."""
    if not tracks:
        return
    means = np.asarray([t.mean for t in tracks])
    covariances = np.asarray([t.covariance for t in tracks])
    for i, track in enumerate(tracks):
        if track.state != TrackState.TRACKED:
            means[i][7] = 0
    means, covariances = kalman.multi_predict(means, covariances)
    for track, mean, covariance in zip(tracks, means, covariances, strict=True):
        track.mean, track.covariance = mean, covariance


def _joined(first: list[Track], second: list[Track]) -> list[Track]:
    """``first``, then the tracks of ``second`` whose IDs are not in it."""
    ids = {t.track_id for t in first}
    return first + [t for t in second if t.track_id not in ids]


def _without(tracks: list[Track], track_ids: Iterable[int]) -> list[Track]:
    excluded = set(track_ids)
    return [t for t in tracks if t.track_id not in excluded]


def _without_duplicates(tracked: list[Track], lost: list[Track]) -> tuple[list[Track], list[Track]]:
    """Of a tracked and a lost track on the same box, drops the one followed for fewer updates
    (the tracked one on a tie)."""
    duplicate_tracked, duplicate_lost = set(), set()
    for p, q in zip(*np.nonzero(track_iou_distance(tracked, lost) < DUPLICATE_THRESH), strict=True):
        if tracked[p].last_frame - tracked[p].start_frame > lost[q].last_frame - lost[q].start_frame:
            duplicate_lost.add(q)
        else:
            duplicate_tracked.add(p)
    return (
        [t for i, t in enumerate(tracked) if i not in duplicate_tracked],
        [t for i, t in enumerate(lost) if i not in duplicate_lost],
    )
