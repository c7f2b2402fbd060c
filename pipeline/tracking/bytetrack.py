"""The tracking stage: Ultralytics' ByteTrack (``lap`` assignment) over ``sv.Detections``.

Ultralytics' own default tracker is not ByteTrack, and its ``track_buffer`` counts frames; this
wrapper always uses ByteTrack (extended for large motion between frames, see
:mod:`pipeline.tracking.motion`) and takes its durations in seconds of video.

Example:
    >>> tracker = ByteTrackTracker(TrackerConfig(track_buffer_s=1.0), fps=30.0)
    >>> detections = sv.Detections(
    ...     xyxy=np.array([[10.0, 10.0, 50.0, 40.0]]), confidence=np.array([0.9]), class_id=np.array([2]))
    >>> tracker.update(detections).tracker_id
    array([1])
"""

from __future__ import annotations

import math
from collections import Counter
from types import SimpleNamespace

import numpy as np
import supervision as sv

from pipeline.config import TrackerConfig
from pipeline.tracking.motion import LargeMotionByteTrack


class _BoxesView:
    """The minimal ``Boxes``-like object BYTETracker reads: ``conf``, ``cls``, ``xywh`` and boolean indexing."""

    def __init__(self, xywh: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xywh, self.conf, self.cls = xywh, conf, cls

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: np.ndarray) -> _BoxesView:
        return _BoxesView(self.xywh[index], self.conf[index], self.cls[index])


class TrackClassVote:
    """Gives each track the class it was most often detected as over its life so far.

    A car misread as a truck for two frames stays a car, so per-class counts do not flicker.
    Votes of tracks unseen for more than ``forget_after_frames`` are dropped.

    Example:
        >>> vote = TrackClassVote(forget_after_frames=30)
        >>> [vote.update([7], [2])[0] for _ in range(3)] + vote.update([7], [7])
        [2, 2, 2, 2]
    """

    def __init__(self, forget_after_frames: int) -> None:
        self.forget_after_frames = forget_after_frames
        self._votes: dict[int, Counter[int]] = {}
        self._last_seen: dict[int, int] = {}
        self._frame = 0

    @property
    def tracks_held(self) -> int:
        return len(self._votes)

    def majority(self, track_id: int) -> int:
        """The track's majority class so far (without adding a vote)."""
        return self._votes[track_id].most_common(1)[0][0]

    def update(self, track_ids: list[int], class_ids: list[int]) -> list[int]:
        """Add one frame's votes; returns the majority class of each given track."""
        self._frame += 1
        majority = []
        for track_id, class_id in zip(track_ids, class_ids, strict=True):
            votes = self._votes.setdefault(track_id, Counter())
            votes[class_id] += 1
            self._last_seen[track_id] = self._frame
            majority.append(votes.most_common(1)[0][0])
        for track_id in [t for t, seen in self._last_seen.items() if self._frame - seen > self.forget_after_frames]:
            del self._votes[track_id], self._last_seen[track_id]
        return majority


class ByteTrackTracker:
    """Assigns persistent ``tracker_id`` values to detections, frame by frame.

    Only detections matched to a confirmed track are returned, with their own (not Kalman-smoothed)
    boxes and masks, so drawing and counting see what the model saw. Each track's ``class_id`` (and
    ``class_name``) is its majority class so far (:class:`TrackClassVote`); ``data["previous_xyxy"]``
    is the track's observed box before this one (NaN for none), so a counter that first meets a
    track on its confirmation still sees where it came from. The association survives objects that
    move more than their own size between frames (:mod:`pipeline.tracking.motion`).

    Args:
        config: Thresholds and the lost-track buffer in seconds.
        fps: The source's frame rate, to turn the buffer into frames.
        class_names: Class id to name, to relabel ``data["class_name"]`` with the voted class.
        detect_every: Detections arrive every Nth frame; :meth:`predict` covers the frames between,
            and the lost-track buffer (counted by ByteTrack in updates) is scaled to match.
    """

    def __init__(
        self,
        config: TrackerConfig,
        fps: float,
        class_names: dict[int, str] | None = None,
        detect_every: int = 1,
    ) -> None:
        self.buffer_frames = max(1, round(config.track_buffer_s * fps))
        self.detect_every = detect_every
        self.class_names = class_names
        args = SimpleNamespace(
            track_high_thresh=config.track_high_thresh,
            track_low_thresh=config.track_low_thresh,
            new_track_thresh=config.new_track_thresh,
            track_buffer=max(1, math.ceil(self.buffer_frames / detect_every)),
            match_thresh=config.match_thresh,
            fuse_score=config.fuse_score,
        )
        self._tracker = LargeMotionByteTrack(args, 1.0 / fps, config.max_speed_sizes_per_s, config.new_track_window_s)
        self._votes = TrackClassVote(forget_after_frames=self.buffer_frames + 1)
        self._last_seen: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        """Box and mask of each track matched on the last update, for :meth:`predict`."""

    def describe(self) -> dict[str, float | int]:
        """The effective values at this source's frame rate, for ``summary.json``."""
        frame_s = self._tracker.frame_s
        return {
            "fps": round(1.0 / frame_s, 4),
            "track_buffer_frames": self.buffer_frames,
            "new_track_reach_sizes": round(self._tracker.max_speed_sizes_per_s * frame_s * self.detect_every, 3),
        }

    def update(self, detections: sv.Detections) -> sv.Detections:
        """Track one frame's detections; returns the tracked subset with ``tracker_id`` set."""
        xyxy = detections.xyxy.astype(np.float32)
        xywh = np.column_stack(((xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2])).reshape(-1, 4)
        confidence = detections.confidence if detections.confidence is not None else np.ones(len(detections))
        class_id = detections.class_id if detections.class_id is not None else np.zeros(len(detections), int)
        self._tracker.step += 1
        tracks = self._tracker.update(_BoxesView(xywh, confidence.astype(np.float32), class_id.astype(np.float32)))
        tracks = tracks.reshape(-1, 8)  # an empty result comes back 1-D
        tracked = detections[tracks[:, 7].astype(int)]  # keeps masks and data columns, even when empty
        tracked.tracker_id = tracks[:, 4].astype(int)
        previous = {t.track_id: t.previous_xyxy for t in self._tracker.tracked_stracks if t.is_activated}
        tracked.data["previous_xyxy"] = np.array(
            [_or_nan(previous.get(int(t))) for t in tracked.tracker_id], dtype=float
        ).reshape(-1, 4)
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
        tracked = [t for t in self._tracker.tracked_stracks if t.is_activated]
        self._tracker.step += 1
        self._tracker.multi_predict(tracked + self._tracker.lost_stracks)
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
