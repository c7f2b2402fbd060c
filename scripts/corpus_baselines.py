"""The two counting baselines users have today, run on a corpus clip and turned into vpipe's crossings.

- **supervision**: vpipe's own detector (:class:`pipeline.models.detector.Detector`, default model
  settings), tracked by Roboflow's ByteTrack at the clip's frame rate (``trackers.ByteTrackTracker``:
  supervision 0.31 has no ``sv.ByteTrack``, and its docs track with this package) and counted
  by one ``sv.LineZone`` per line on the bottom centre of the box (vpipe's anchor).
- **ObjectCounter**: ``ultralytics.solutions.ObjectCounter`` as a new user runs it (the bundled
  ``models/yolo11n.pt``, ``bytetrack.yaml``, everything else default), one counter per line since
  it has one region; each of its counts is timed when the track's bottom centre crosses the line.

Both name a line's directions their own way; :func:`line_zone_directions` and
:func:`object_counter_directions` say which of vpipe's directions each of theirs is, per line.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from pipeline.analytics.events import Direction
from pipeline.analytics.lines import DirectedSegment
from pipeline.evaluation import CountedCrossing
from pipeline.geometry import Point, cross

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = REPO / "models" / "yolo11n.pt"
Lines = dict[str, tuple[Point, Point]]
"""Line name -> (start, end), as in a truth file."""

_OPPOSITE: dict[Direction, Direction] = {"in": "out", "out": "in"}


def line_zone_directions(start: Point, end: Point) -> dict[str, Direction]:
    """vpipe's direction of each of ``sv.LineZone``'s counts (``in``, ``out``) for the line ``start`` -> ``end``.

    LineZone names the sides of a line by its own convention, so rather than assume it, one
    synthetic track is driven across a fresh LineZone (bottom-centre anchor) from vpipe's negative
    side of ``cross(end - start, anchor - start)`` to its positive side, i.e. vpipe's ``in``: the
    count LineZone raises for it is vpipe's ``in``.

    Raises:
        RuntimeError: LineZone counted the synthetic crossing neither way (or both).
    """
    zone = sv.LineZone(start=sv.Point(*start), end=sv.Point(*end), triggering_anchors=[sv.Position.BOTTOM_CENTER])
    length = math.dist(start, end)
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    normal = ((start[1] - end[1]) / length, (end[0] - start[0]) / length)
    ends = [(middle[0] + k * 10 * normal[0], middle[1] + k * 10 * normal[1]) for k in (-1, 1)]
    ends.sort(key=lambda anchor: cross(start, end, anchor))  # vpipe's negative side first
    crossed_in = crossed_out = np.zeros(1, bool)
    for x, y in ends:
        track = sv.Detections(xyxy=np.array([[x - 2.0, y - 4.0, x + 2.0, y]]), tracker_id=np.array([1]))
        crossed_in, crossed_out = zone.trigger(track)
    if crossed_in[0] == crossed_out[0]:
        raise RuntimeError(f"sv.LineZone counted no single direction for a track across {start} -> {end}")
    return {"in": "in", "out": "out"} if crossed_in[0] else {"in": "out", "out": "in"}


def object_counter_directions(start: Point, end: Point) -> dict[str, Direction]:
    """vpipe's direction of each of ObjectCounter's counts (``IN``, ``OUT``) for the line ``start`` -> ``end``.

    ObjectCounter (``count_objects``) judges by the motion, not the side: on a line more vertical
    than horizontal moving right is IN, on any other moving down is IN. That motion is vpipe's
    ``in`` when it points to the positive side of ``cross(end - start, anchor - start)``.
    """
    vertical = abs(start[0] - end[0]) < abs(start[1] - end[1])
    inward = (start[0] + 1, start[1]) if vertical else (start[0], start[1] + 1)
    ours: Direction = "in" if cross(start, end, inward) > 0 else "out"
    return {"IN": ours, "OUT": _OPPOSITE[ours]}


class LineZoneCounter:
    """One ``sv.LineZone`` on a line, anchored on the box's bottom centre, its counts as vpipe's crossings."""

    def __init__(self, name: str, start: Point, end: Point) -> None:
        self.name = name
        self.zone = sv.LineZone(
            start=sv.Point(*start), end=sv.Point(*end), triggering_anchors=[sv.Position.BOTTOM_CENTER]
        )
        self.directions = line_zone_directions(start, end)

    def update(self, tracked: sv.Detections, frame_index: int) -> list[CountedCrossing]:
        """The crossings LineZone counts on one frame's tracked detections."""
        crossings = []
        for side, crossed in zip(("in", "out"), self.zone.trigger(tracked), strict=True):
            crossings += [
                CountedCrossing(self.name, self.directions[side], frame_index, int(track_id))
                for track_id in tracked.tracker_id[crossed]
            ]
        return crossings


def supervision_crossings(clip: Path, lines: Lines, precision: str, step: int = 1) -> list[CountedCrossing]:
    """Every crossing ``sv.LineZone`` counts on ``clip``, over vpipe's detections tracked by ByteTrack.

    Args:
        clip: The video.
        lines: The truth file's lines.
        precision: The detector's precision (``auto``, ``fp32`` or ``int8``), as ``vpipe run --precision``.
        step: ``clip`` holds every ``step``-th frame of the truth's clip: counts are in the truth's frames.
    """
    from trackers import ByteTrackTracker

    from pipeline.config import ModelConfig
    from pipeline.io.sources.files import open_source
    from pipeline.models.detector import Detector

    source = open_source(str(clip))
    detector = Detector(ModelConfig(precision=precision), frame_size=(source.width, source.height))
    tracker = ByteTrackTracker(frame_rate=float(source.fps))
    counters = [LineZoneCounter(name, start, end) for name, (start, end) in lines.items()]
    crossings = []
    try:
        for frame in source:
            tracked = tracker.update(detector(frame.image))
            for counter in counters:
                crossings += counter.update(tracked, frame.frame_index * step)
    finally:
        source.close()
    return crossings


def object_counter_crossings(clip: Path, lines: Lines, step: int = 1) -> list[CountedCrossing]:
    """Every crossing Ultralytics' ObjectCounter counts on ``clip``, one counter per line (``step``:
    as for :func:`supervision_crossings`).

    ObjectCounter counts when the box centre crosses; each count is timed instead when the counted
    track's box bottom centre crosses the line (:func:`anchor_crossing_frame`), the point the truth
    was taken on and vpipe and LineZone count on, so that a count right for its vehicle is not
    judged by where the anchor sits: half a slow or tall vehicle's height can take longer to cross
    than the matching window.
    """
    from pipeline.io.sources.files import open_source

    counters = {name: _object_counter(start, end) for name, (start, end) in lines.items()}
    bottoms: dict[str, dict[int, list[tuple[int, Point]]]] = {name: defaultdict(list) for name in lines}
    counted = []
    source = open_source(str(clip))
    try:
        for frame in source:
            for name, counter in counters.items():
                counter(frame.image.copy())  # it draws on the image it is given, which the next counter would see
                boxes = np.asarray(counter.boxes, float).reshape(-1, 4)
                for (x1, _, x2, y2), track_id in zip(boxes, counter.track_ids, strict=True):
                    bottoms[name][track_id].append((frame.frame_index * step, ((x1 + x2) / 2, y2)))
                counted += [(name, track_id, side, frame.frame_index * step) for track_id, side in counter.counts]
                counter.counts.clear()
    finally:
        source.close()
    return [
        CountedCrossing(
            name,
            object_counter_directions(*lines[name])[side],
            anchor_crossing_frame(DirectedSegment(*lines[name]), bottoms[name][track_id], frame_index),
            track_id,
        )
        for name, track_id, side, frame_index in counted
    ]


def _object_counter(start: Point, end: Point) -> Any:
    """ObjectCounter for one line with the settings a new user gives it, noting the track and side
    (IN or OUT) of each count in ``counts`` (its totals do not say which track they are for)."""
    os.environ.setdefault("YOLO_VERBOSE", "false")  # its settings banner is not a result
    from ultralytics.solutions import ObjectCounter

    class NotedObjectCounter(ObjectCounter):
        def count_objects(self, current_centroid: Point, track_id: int, prev_position: Point | None, cls: int) -> None:
            before = self.in_count, self.out_count
            super().count_objects(current_centroid, track_id, prev_position, cls)
            if (self.in_count, self.out_count) != before:
                self.counts.append((track_id, "IN" if self.in_count > before[0] else "OUT"))

    counter = NotedObjectCounter(
        region=[start, end], model=str(WEIGHTS), tracker="bytetrack.yaml", show=False, verbose=False
    )
    counter.counts = []
    return counter


def anchor_crossing_frame(segment: DirectedSegment, path: list[tuple[int, Point]], counted_at: int) -> int:
    """The frame, nearest to ``counted_at``, at which a track's anchor path ((frame, point) in frame
    order) crossed ``segment``; ``counted_at`` where it never did (seen only on one side)."""
    frames = [
        frame
        for (_, previous), (frame, point) in pairwise(path)
        if segment.side(previous) * segment.side(point) < 0 and segment.crossing_position(previous, point) is not None
    ]
    return min(frames, key=lambda frame: abs(frame - counted_at), default=counted_at)


def truth_lines(document: dict) -> Lines:
    """(start, end) of each line of a truth file's document."""
    return {str(name): (tuple(line["start"]), tuple(line["end"])) for name, line in document["lines"].items()}
