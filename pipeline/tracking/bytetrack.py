"""The tracking stage: ByteTrack over ``sv.Detections``, with its durations in seconds of video.

ByteTrack (Zhang et al., 2022) associates each frame's detections with the tracks' Kalman
predictions in two stages: high-score detections first, then the low-score ones, which only extend
tracks already there (a weak box never starts a track). This is vpipe's own implementation, with
the low-frame-rate extensions of :mod:`pipeline.tracking.motion`.

Example:
    >>> tracker = ByteTrackTracker(TrackerConfig(track_buffer_s=1.0), fps=30.0)
    >>> detections = sv.Detections(
    ...     xyxy=np.array([[10.0, 10.0, 50.0, 40.0]]), confidence=np.array([0.9]), class_id=np.array([2]))
    >>> tracker.update(detections).tracker_id
    array([1])
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable

import numpy as np
import supervision as sv

from pipeline.config import TrackerConfig
from pipeline.tracking.kalman import KalmanFilter
from pipeline.tracking.matching import Cost, IouCost, linear_assignment, track_iou_distance
from pipeline.tracking.motion import TENTATIVE_THRESH, ReachCost, observed_motion
from pipeline.tracking.track import Detection, Motion, Track, TrackState
from pipeline.tracking.votes import TrackClassVote

LOW_STAGE_THRESH = 0.5
"""Cost limit (IoU >= 0.5) of the low-score stage: weak boxes extend only tracks they overlap well."""
DUPLICATE_THRESH = 0.15
"""A tracked and a lost track closer than this (IoU > 0.85) are one object seen twice."""
REMOVED_MEMORY = 1000
"""How many removed track IDs are remembered (a lost track whose ID is among them is dropped)."""


class ByteTrackTracker:
    """Assigns persistent ``tracker_id`` values to detections, frame by frame.

    Only detections matched to a confirmed track are returned, with their own (not Kalman-smoothed)
    boxes and masks, so drawing and counting see what the model saw. Each track's ``class_id`` (and
    ``class_name``) is its majority class so far (:class:`TrackClassVote`); ``data["previous_xyxy"]``
    is the track's observed box before this one (NaN for none), so a counter that first meets a
    track on its confirmation still sees where it came from.

    Args:
        config: Thresholds, the lost-track buffer and the low-frame-rate settings, in seconds.
        fps: The source's frame rate, to turn durations into frames.
        class_names: Class id to name, to relabel ``data["class_name"]`` with the voted class.
        detect_every: Detections arrive every Nth frame; :meth:`predict` covers the frames between,
            and the lost-track buffer (counted in updates) is scaled to match.
        cost: The association cost of the high-score stage and of new tracks (default: ByteTrack's
            IoU cost, fused with scores per ``config.fuse_score``, in a :class:`ReachCost`).
        motion: How a matched track moves on (default :func:`observed_motion`; ByteTrack's is
            :func:`~pipeline.tracking.motion.kalman_motion`).
    """

    def __init__(
        self,
        config: TrackerConfig,
        fps: float,
        class_names: dict[int, str] | None = None,
        detect_every: int = 1,
        cost: Cost | None = None,
        motion: Motion = observed_motion,
    ) -> None:
        self.config = config
        self.frame_s = 1.0 / fps
        self.buffer_frames = max(1, round(config.track_buffer_s * fps))
        self.lost_buffer_updates = max(1, math.ceil(self.buffer_frames / detect_every))
        """Updates (frames with detections) a lost track is kept for."""
        self.detect_every = detect_every
        self.class_names = class_names
        self.cost = cost or ReachCost(IouCost(config.fuse_score), config.max_speed_sizes_per_s, self.frame_s)
        self.motion = motion
        self.kalman = KalmanFilter()
        self.reset()

    def reset(self) -> None:
        """Forget every track; IDs start again at 1."""
        self._tracked: list[Track] = []
        """New and tracked tracks, in the order they were first matched (the output order)."""
        self._lost: list[Track] = []
        self._removed_ids: deque[int] = deque(maxlen=REMOVED_MEMORY)
        self._ids = itertools.count(1)
        self._updates = 0
        """Frames with detections so far (ByteTrack's frame count: the lost buffer counts these)."""
        self._step = 0
        """Frames advanced, detected or only predicted (``--detect-every``)."""
        self._votes = TrackClassVote(forget_after_frames=self.buffer_frames + 1)
        self._last_seen: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        """Box and mask of each track matched on the last update, for :meth:`predict`."""

    def describe(self) -> dict[str, float | int]:
        """The effective values at this source's frame rate, for ``summary.json``."""
        return {
            "fps": round(1.0 / self.frame_s, 4),
            "track_buffer_frames": self.buffer_frames,
            "new_track_reach_sizes": round(self.config.max_speed_sizes_per_s * self.frame_s * self.detect_every, 3),
        }

    def update(self, detections: sv.Detections) -> sv.Detections:
        """Track one frame's detections; returns the tracked subset with ``tracker_id`` set."""
        self._updates += 1
        self._step += 1
        self._associate(*self._split(detections))
        confirmed = [t for t in self._tracked if t.state == TrackState.TRACKED]
        tracked = detections[np.array([t.index for t in confirmed], dtype=int)]  # keeps masks and data columns
        tracked.tracker_id = np.array([t.track_id for t in confirmed], dtype=int)
        previous = [_or_nan(t.previous_xyxy) for t in confirmed]
        tracked.data["previous_xyxy"] = np.array(previous, dtype=float).reshape(-1, 4)
        if tracked.class_id is not None:
            voted = self._votes.update(tracked.tracker_id.tolist(), tracked.class_id.tolist())
            tracked.class_id = np.array(voted, dtype=int)
            if self.class_names is not None and len(tracked):
                tracked.data["class_name"] = np.array([self.class_names[c] for c in tracked.class_id.tolist()])
        masks = tracked.mask if tracked.mask is not None else [None] * len(tracked)
        self._last_seen = dict(zip(tracked.tracker_id.tolist(), zip(tracked.xyxy, masks, strict=True), strict=True))
        return tracked

    def _split(self, detections: sv.Detections) -> tuple[list[Detection], list[Detection]]:
        """The frame's high-score and low-score detections (boxes without area are left out)."""
        xyxy = detections.xyxy.astype(np.float32)
        xywh = np.column_stack(((xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2])).reshape(-1, 4)
        confidence = detections.confidence if detections.confidence is not None else np.ones(len(detections))
        confidence = confidence.astype(np.float32)
        valid = (xywh[:, 2] > 0) & (xywh[:, 3] > 0)  # the Kalman state divides by the height
        high = valid & (confidence >= self.config.track_high_thresh)
        low = valid & (confidence > self.config.track_low_thresh) & (confidence < self.config.track_high_thresh)
        high_rows, low_rows = np.flatnonzero(high), np.flatnonzero(low)
        return (
            [Detection(xywh[i], confidence[i], int(i), self._step) for i in high_rows],
            [Detection(xywh[i], confidence[i], int(i), self._step) for i in low_rows],
        )

    def _associate(self, high: list[Detection], low: list[Detection]) -> None:
        """ByteTrack's update of the track pools with one frame's detections."""
        new = [t for t in self._tracked if t.state == TrackState.NEW]
        pool = _joined([t for t in self._tracked if t.state == TrackState.TRACKED], self._lost)
        self._predict(pool)
        activated: list[Track] = []
        refound: list[Track] = []
        lost: list[Track] = []
        removed: list[Track] = []

        # Stage 1: high-score detections with the confirmed and lost tracks.
        matches, unmatched_tracks, unmatched_high = linear_assignment(self.cost(pool, high), self.config.match_thresh)
        for t, d in matches:
            self._match(pool[t], high[d], activated, refound)

        # Stage 2: low-score detections with the tracks left unmatched, by overlap alone.
        remaining = [pool[i] for i in unmatched_tracks if pool[i].state == TrackState.TRACKED]
        was_lost = [pool[i] for i in unmatched_tracks if pool[i].state == TrackState.LOST]
        matches, unmatched_remaining, unmatched_low = linear_assignment(
            track_iou_distance(remaining, low), LOW_STAGE_THRESH
        )
        for t, d in matches:
            self._match(remaining[t], low[d], activated, refound)
        for i in unmatched_remaining:
            remaining[i].state = TrackState.LOST
            lost.append(remaining[i])
        left = [low[i] for i in unmatched_low]  # lost tracks may be re-found by the rest (motion.py)
        matches, _, _ = linear_assignment(track_iou_distance(was_lost, left), LOW_STAGE_THRESH)
        for t, d in matches:
            self._match(was_lost[t], left[d], activated, refound)

        # New tracks: their second sighting among the high-score detections still unmatched.
        high = [high[i] for i in unmatched_high]
        matches, unmatched_new, unmatched_high = linear_assignment(self.cost(new, high), TENTATIVE_THRESH)
        for t, d in matches:
            new[t].update(high[d], self._updates, self.motion)
            activated.append(new[t])
        for i in unmatched_new:  # kept for new_track_window_s (at least the next frame), then dropped
            if (self._step - new[i].seen_step) * self.frame_s > self.config.new_track_window_s + 1e-9:
                new[i].state = TrackState.REMOVED
                removed.append(new[i])

        for i in unmatched_high:
            if high[i].score >= self.config.new_track_thresh:
                # ByteTrack confirms the tracks of its first frame at once: there is nothing to confirm them by
                state = TrackState.TRACKED if self._updates == 1 else TrackState.NEW
                activated.append(Track(next(self._ids), high[i], self.kalman, self._updates, state))
        for track in self._lost:
            if self._updates - track.last_frame > self.lost_buffer_updates:
                track.state = TrackState.REMOVED
                removed.append(track)
        self._merge(activated, refound, lost, removed)

    def _match(self, track: Track, detection: Detection, activated: list[Track], refound: list[Track]) -> None:
        if track.state == TrackState.TRACKED:
            track.update(detection, self._updates, self.motion)
            activated.append(track)
        else:  # lost, or removed on the last update and still in the lost pool
            track.reactivate(detection, self._updates)
            refound.append(track)

    def _merge(self, activated: list[Track], refound: list[Track], lost: list[Track], removed: list[Track]) -> None:
        """ByteTrack's bookkeeping of the pools at the end of an update.

        A lost track that runs out of buffer stays in the lost pool (removed) until the next update,
        and can still be re-found there, as in ByteTrack's reference implementation.
        """
        tracked = [t for t in self._tracked if t.state in (TrackState.NEW, TrackState.TRACKED)]
        self._tracked = _joined(_joined(tracked, activated), refound)
        self._lost = _without(self._lost, (t.track_id for t in self._tracked)) + lost
        self._lost = _without(self._lost, self._removed_ids)
        self._tracked, self._lost = _without_duplicates(self._tracked, self._lost)
        self._removed_ids.extend(t.track_id for t in removed)

    def _predict(self, tracks: list[Track]) -> None:
        """Advance ``tracks`` one frame with the Kalman filter; tracks not tracked keep their height."""
        if not tracks:
            return
        means = np.asarray([t.mean for t in tracks])
        covariances = np.asarray([t.covariance for t in tracks])
        for i, track in enumerate(tracks):
            if track.state != TrackState.TRACKED:
                means[i][7] = 0
        means, covariances = self.kalman.multi_predict(means, covariances)
        for track, mean, covariance in zip(tracks, means, covariances, strict=True):
            track.mean, track.covariance = mean, covariance

    def predict(self) -> sv.Detections:
        """Advance every track one frame with its motion model, without detections.

        Returns the confirmed tracks at their predicted boxes (masks shifted along), with their
        voted classes, for frames on which the detector is skipped (``--detect-every``).
        """
        tracked = [t for t in self._tracked if t.state == TrackState.TRACKED]
        self._step += 1
        self._predict(tracked + self._lost)
        tracked = [t for t in tracked if t.track_id in self._last_seen]
        if not tracked:
            return sv.Detections.empty()
        xyxy = np.array([t.xyxy for t in tracked], dtype=float)
        track_ids = np.array([t.track_id for t in tracked], dtype=int)
        class_ids = np.array([self._votes.majority(int(t)) for t in track_ids], dtype=int)
        masks = None
        if all(self._last_seen[int(t)][1] is not None for t in track_ids):
            masks = np.stack(
                [
                    _shifted(self._last_seen[int(t)][1], self._last_seen[int(t)][0], box)
                    for t, box in zip(track_ids, xyxy, strict=True)
                ]
            )
        data = {}
        if self.class_names is not None:
            data["class_name"] = np.array([self.class_names[c] for c in class_ids.tolist()])
        return sv.Detections(
            xyxy=xyxy,
            mask=masks,
            confidence=np.array([t.score for t in tracked], dtype=float),
            class_id=class_ids,
            tracker_id=track_ids,
            data=data,
        )


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


def _or_nan(box: np.ndarray | None) -> np.ndarray:
    return np.full(4, np.nan) if box is None else box


def _shifted(mask: np.ndarray, old_box: np.ndarray, new_box: np.ndarray) -> np.ndarray:
    """``mask`` moved by the displacement of its box's centre (whole pixels, edges cropped)."""
    dx = round(float(new_box[0] + new_box[2] - old_box[0] - old_box[2]) / 2)
    dy = round(float(new_box[1] + new_box[3] - old_box[1] - old_box[3]) / 2)
    height, width = mask.shape
    shifted = np.zeros_like(mask)
    if abs(dx) < width and abs(dy) < height:
        shifted[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = mask[
            max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
        ]
    return shifted
