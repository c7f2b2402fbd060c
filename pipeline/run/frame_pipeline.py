"""The per-frame core that every way of running shares (``vpipe run``, live feeds, batch slices).

One frame and its detections go in; the tracked detections, the frame's events, its counts and a
frozen view for drawing come out. Reading frames, running the model and writing files are the
callers' business, so this is the one place where a frame is tracked and counted.

Example:
    >>> import numpy as np, supervision as sv
    >>> from pipeline.config import Config, LineConfig
    >>> from pipeline.io.sources.files import Frame
    >>> config = Config(lines=[LineConfig("main", (0, 50), (200, 50))])
    >>> core = FramePipeline(config, fps=10.0, class_names={2: "car"}, frame_size=(200, 100))
    >>> image = np.zeros((100, 200, 3), np.uint8)
    >>> for index, y in enumerate(range(30, 100, 10)):  # a car driving down across y=50
    ...     box = sv.Detections(np.array([[90.0, y - 30, 110.0, y]]), confidence=np.array([0.9]),
    ...                         class_id=np.array([2]))
    ...     result = core.step(Frame(image, index, index / 10), box)
    >>> result.counts
    {'main_in': 1, 'main_out': 0}
    >>> core.tracks.total
    1
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import supervision as sv

from pipeline.analytics import Analytics, AnalyticsView, Counts, Event
from pipeline.analytics.heatmap import Heatmap
from pipeline.analytics.tally import SliceTally
from pipeline.config import Config
from pipeline.config.columns import FRAME_COLUMNS
from pipeline.io.sources.files import Frame
from pipeline.run.motion_gate import MotionGate
from pipeline.tracking import ByteTrackTracker


class Need(Enum):
    """What a frame needs before it is tracked (:meth:`FramePipeline.detection_need`)."""

    DETECT = "detect"
    """Through the model."""
    PREDICT = "predict"
    """Between two detected frames (``model.detect_every``): the tracker predicts."""
    HOLD = "hold"
    """Unchanged since the last detected frame (``model.motion_gate``): that frame's detections hold."""


@dataclass(frozen=True)
class FrameResult:
    """What the core made of one frame.

    Attributes:
        frame: The frame (its image is drawn on later).
        tracked: Detections with ``tracker_id`` (ByteTrack's prediction on a frame not detected).
        events: Crossings, zone and slot events of this frame.
        counts: The analytics columns of ``counts.csv`` on this frame (what a live view shows).
        view: A frozen snapshot of the counters for the overlays.
    """

    frame: Frame
    tracked: sv.Detections
    events: list[Event]
    counts: dict[str, Any]
    view: AnalyticsView

    @property
    def row(self) -> dict[str, Any]:
        """This frame's ``counts.csv`` row."""
        return {
            "frame_index": self.frame.frame_index,
            "timestamp_s": self.frame.timestamp_s,
            "tracks_active": len(self.tracked),
            **self.counts,
        }


class DistinctTracks:
    """Counts the distinct track IDs seen, in memory that does not grow with the run's length.

    ByteTrack issues IDs in increasing order and outputs a track from the frame after its ID is
    issued, so an ID above the highest counted so far is new. Tracks already seen before counting
    began (a batch slice's warm-up, see :meth:`skip`) may come back later with lower IDs; only
    those are remembered one by one.

    Example:
        >>> tracks = DistinctTracks()
        >>> tracks.skip(np.array([3, 5]))  # warm-up: seen, not counted
        >>> for ids in ([5, 6], [3, 6, 7], [3, 7]):
        ...     tracks.update(np.array(ids))
        >>> tracks.total  # 5, 6, 3 and 7
        4
    """

    def __init__(self) -> None:
        self.total = 0
        self._highest = 0
        self._skipped_up_to = 0
        self._skipped_seen: set[int] = set()

    def skip(self, track_ids: np.ndarray | None) -> None:
        """Tracks seen before counting begins: not counted now, counted once if seen by :meth:`update`."""
        if track_ids is not None and len(track_ids):
            self._skipped_up_to = max(self._skipped_up_to, int(track_ids.max()))
            self._highest = max(self._highest, self._skipped_up_to)

    def update(self, track_ids: np.ndarray | None) -> None:
        """Count the new IDs among one frame's tracks."""
        if track_ids is None or not len(track_ids):
            return
        for track_id in track_ids[track_ids <= self._skipped_up_to].tolist():
            if track_id not in self._skipped_seen:
                self._skipped_seen.add(track_id)
                self.total += 1
        self.total += int((track_ids > self._highest).sum())
        self._highest = max(self._highest, int(track_ids.max()))


def at_frame_edge(xyxy: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Which boxes touch the frame's left, right or bottom edge (within a pixel): the object may go on
    beyond it, so the box's bottom centre is not where it touches the road.

    Example:
        >>> at_frame_edge(np.array([[0, 10, 50, 60], [10, 10, 50, 60], [10, 10, 50, 99.5]]), (200, 100)).tolist()
        [True, False, True]
    """
    width, height = frame_size
    boxes = np.asarray(xyxy, dtype=float).reshape(-1, 4)
    return (boxes[:, 0] <= 1) | (boxes[:, 2] >= width - 1) | (boxes[:, 3] >= height - 1)


class FramePipeline:
    """Tracks and counts one source's frames: ByteTrack, every configured counter, the heat map.

    Args:
        config: The run config, geometry in this source's pixels.
        fps: The source's nominal frame rate (the tracker's buffers are in seconds).
        class_names: The model's class names by id.
        frame_size: The source's (width, height).
        warmup: Frames are stepped uncounted first (a batch slice's warm-up): the counters' totals
            include them, so those of the counted frames are kept apart, in :attr:`tally`.
    """

    def __init__(
        self,
        config: Config,
        fps: float,
        class_names: Mapping[int, str],
        frame_size: tuple[int, int],
        warmup: bool = False,
    ) -> None:
        self.config = config
        self.detect_every = 1 if config.model.detect_every == "auto" else config.model.detect_every
        """The current detection interval (``auto`` starts at 1; see :meth:`set_detect_every`)."""
        self.fps = fps
        self.class_names = dict(class_names)
        self.frame_size = frame_size
        self.tracker = ByteTrackTracker(
            config.tracker, fps=fps, class_names=self.class_names, detect_every=self.detect_every
        )
        self.analytics = Analytics.for_run(config)
        self.tally = SliceTally.for_analytics(self.analytics) if warmup else None
        self.heatmap = Heatmap(*frame_size)
        self.tracks = DistinctTracks()
        self.gate = MotionGate() if config.model.motion_gate else None
        """Touched by :meth:`detection_need` only, on the detection thread."""
        self._last_detections: sv.Detections | None = None
        """The last detected frame's detections, which a held frame repeats (touched by :meth:`step` only)."""

    @property
    def columns(self) -> list[str]:
        """The columns of ``counts.csv``, in order."""
        return [*FRAME_COLUMNS, *self.analytics.columns]

    def detection_need(self, frame: Frame) -> Need:
        """Whether ``frame`` goes through the model: every ``model.detect_every``-th frame (when the
        interval changes, the gap to the next detected frame is at most the larger of the two),
        unless ``model.motion_gate`` finds it unchanged since the last detected one."""
        if frame.frame_index % self.detect_every:
            return Need.PREDICT
        if self.gate is not None and self.gate.unchanged(frame.image, frame.timestamp_s):
            return Need.HOLD
        return Need.DETECT

    def set_detect_every(self, detect_every: int) -> None:
        """Detect every ``detect_every`` frames from now on (``--detect-every auto``)."""
        self.detect_every = detect_every
        self.tracker.set_detect_every(detect_every)

    def step(
        self, frame: Frame, detections: sv.Detections | None, counted: bool = True, held: bool = False
    ) -> FrameResult:
        """Track and count one frame.

        Args:
            frame: The frame.
            detections: The model's detections, or None on a frame the model skipped (the tracker predicts).
            counted: False for a batch slice's warm-up: the tracker and counters learn, the heat map,
                distinct tracks and tally do not.
            held: The frame is unchanged since the last detected one (:attr:`Need.HOLD`): the tracker
                gets that frame's detections again, as the model would find them, so the tracks of a
                still scene stay where they are; a prediction would carry a car that just stopped
                on at its last speed, across a line, for as long as the scene stays still.
        """
        if held and self._last_detections is not None:
            detections = self._last_detections
        elif detections is not None:
            self._last_detections = detections
        tracked = self.tracker.update(detections) if detections is not None else self.tracker.predict()
        tracked.data["at_edge"] = at_frame_edge(tracked.xyxy, self.frame_size)
        events = self.analytics.update(tracked, frame.frame_index, frame.timestamp_s, raw=detections)
        if counted:
            self.heatmap.update(tracked)
            self.tracks.update(tracked.tracker_id)
            if self.tally is not None:
                self.tally.add(events, self.analytics.zone_counts())
        else:
            self.tracks.skip(tracked.tracker_id)
        counts = self.analytics.row()
        if self.tally is not None:  # line counts since the first counted frame
            counts.update(self.tally.line_columns())
        return FrameResult(frame, tracked, events, counts, self.analytics.view())

    def counts(self, end_s: float) -> Counts:
        """The counting sections of ``summary.json`` at ``end_s`` (with a warm-up: the tally's)."""
        if self.tally is None:
            return self.analytics.summary(end_s)
        return self.tally.summary(self.analytics.inside_at_end(end_s))

    def resize(self, width: int, height: int) -> None:
        """Follow the source to a new resolution: geometry rescaled, counts kept, tracks ended (boxes
        at another scale cannot match the old tracks) and new ones numbered on from the last."""
        old_width, old_height = self.frame_size
        self.analytics.rescale(width / old_width, height / old_height)
        self.tracker.end_tracks()
        self._last_detections = None  # at the old scale; the gate detects a frame of another size
        self.frame_size = (width, height)
