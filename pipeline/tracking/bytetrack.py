"""The tracking stage: ByteTrack over ``sv.Detections``, with its durations in seconds of video.

The association itself (two stages, track pools) is :mod:`pipeline.tracking.association`; this
wrapper turns detections into its input and its tracks back into detections, with voted classes,
the previous observed box, and masks carried along on frames without detections.

Example:
    >>> tracker = ByteTrackTracker(TrackerConfig(track_buffer_s=1.0), fps=30.0)
    >>> detections = sv.Detections(
    ...     xyxy=np.array([[10.0, 10.0, 50.0, 40.0]]), confidence=np.array([0.9]), class_id=np.array([2]))
    >>> tracker.update(detections).tracker_id
    array([1])
"""

from __future__ import annotations

import math

import numpy as np
import supervision as sv

from pipeline.config import TrackerConfig
from pipeline.tracking.association import ByteTrack
from pipeline.tracking.matching import Cost, IouCost
from pipeline.tracking.motion import ReachCost, observed_motion
from pipeline.tracking.track import Motion
from pipeline.tracking.votes import TrackClassVote


class ByteTrackTracker:
    """Assigns persistent ``tracker_id`` values to detections, frame by frame.

    Only detections matched to a confirmed track are returned, with their own (not Kalman-smoothed)
    boxes and masks, so drawing and counting see what the model saw. Each track's ``class_id`` (and
    ``class_name``) is its majority class so far (:class:`TrackClassVote`); ``data["previous_xyxy"]``
    is the track's observed box before this one (NaN for none; for a track confirmed on this frame,
    where its path began, see :meth:`~pipeline.tracking.track.Track.adopt_origin`) and
    ``data["previous_age_s"]`` how long before this one it was seen, so a counter that first meets a
    track on its confirmation still sees where it came from, and when.

    Args:
        config: Thresholds, the lost-track buffer and the low-frame-rate settings, in seconds.
        fps: The source's frame rate, to turn durations into frames.
        class_names: Class id to name, to relabel ``data["class_name"]`` with the voted class.
        detect_every: Detections arrive every Nth frame; :meth:`predict` covers the frames between
            (the lost-track buffer is counted in frames, see :func:`lost_buffer_steps`).
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
        self.lost_buffer_steps = lost_buffer_steps(self.buffer_frames, detect_every)
        """Frames a lost track is kept for after it was last seen."""
        self.detect_every = detect_every
        self.class_names = class_names
        self.cost = cost or ReachCost(IouCost(config.fuse_score), config.max_speed_sizes_per_s, self.frame_s)
        self.motion = motion
        self.reset()

    def set_detect_every(self, detect_every: int) -> None:
        """Detections arrive every ``detect_every`` frames from now on (``--detect-every auto``); a lost
        track, before the change or after, is kept as many frames since it was last seen."""
        self.detect_every = detect_every
        self.lost_buffer_steps = lost_buffer_steps(self.buffer_frames, detect_every)
        self.bytetrack.lost_buffer_steps = self.lost_buffer_steps

    def reset(self) -> None:
        """Forget every track; IDs start again at 1."""
        self.bytetrack = ByteTrack(self.config, self.frame_s, self.lost_buffer_steps, self.cost, self.motion)
        self._votes = TrackClassVote(forget_after_frames=self.buffer_frames + 1)
        self._last_seen: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        """Box and mask of each track matched on the last update, for :meth:`predict`."""

    def end_tracks(self) -> None:
        """End every track, as when the picture changes scale: boxes of the new frames cannot match
        the old tracks. IDs go on from the last (unlike :meth:`reset`), so the counters, which key
        what they keep by ID, never mistake a new track for an ended one."""
        self.bytetrack.end_tracks()
        self._last_seen = {}

    def describe(self) -> dict[str, float | int]:
        """The effective values at this source's frame rate, for ``summary.json``."""
        return {
            "fps": round(1.0 / self.frame_s, 4),
            "track_buffer_frames": self.buffer_frames,
            "new_track_reach_sizes": round(self.config.max_speed_sizes_per_s * self.frame_s * self.detect_every, 3),
        }

    def update(self, detections: sv.Detections) -> sv.Detections:
        """Track one frame's detections; returns the tracked subset with ``tracker_id`` set."""
        xyxy = detections.xyxy.astype(np.float32)
        xywh = np.column_stack(((xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2])).reshape(-1, 4)
        confidence = detections.confidence if detections.confidence is not None else np.ones(len(detections))
        self.bytetrack.update(xywh, confidence.astype(np.float32))
        confirmed = self.bytetrack.confirmed
        tracked = detections[np.array([t.index for t in confirmed], dtype=int)]  # keeps masks and data columns
        tracked.tracker_id = np.array([t.track_id for t in confirmed], dtype=int)
        previous = [_or_nan(t.previous_xyxy) for t in confirmed]
        tracked.data["previous_xyxy"] = np.array(previous, dtype=float).reshape(-1, 4)
        steps = [np.nan if t.previous_step is None else t.seen_step - t.previous_step for t in confirmed]
        tracked.data["previous_age_s"] = np.array(steps, dtype=float) * self.frame_s
        if tracked.class_id is not None:
            voted = self._votes.update(tracked.tracker_id.tolist(), tracked.class_id.tolist())
            tracked.class_id = np.array(voted, dtype=int)
            if self.class_names is not None and len(tracked):
                tracked.data["class_name"] = np.array([self.class_names[c] for c in tracked.class_id.tolist()])
        masks = tracked.mask if tracked.mask is not None else [None] * len(tracked)
        self._last_seen = dict(zip(tracked.tracker_id.tolist(), zip(tracked.xyxy, masks, strict=True), strict=True))
        return tracked

    def predict(self) -> sv.Detections:
        """Advance every track one frame with its motion model, without detections.

        Returns the confirmed tracks at their predicted boxes (masks shifted along), with their
        voted classes, for frames on which the detector is skipped (``--detect-every``).
        """
        self.bytetrack.predict()
        tracked = [t for t in self.bytetrack.confirmed if t.track_id in self._last_seen]
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


def lost_buffer_steps(buffer_frames: int, detect_every: int) -> int:
    """Frames a lost track is kept for: ``buffer_frames`` rounded up to whole detection intervals, so
    that at a steady interval a lost track is dropped after ``ceil(buffer_frames / detect_every)``
    updates without a match, as ByteTrack counts its buffer in the frames it is given.

    Example:
        >>> lost_buffer_steps(30, 1), lost_buffer_steps(30, 3), lost_buffer_steps(30, 4)
        (30, 30, 32)
    """
    return max(1, math.ceil(buffer_frames / detect_every)) * detect_every


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
