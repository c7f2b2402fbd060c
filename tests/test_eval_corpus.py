"""The corpus baselines' directions as vpipe names them, and ObjectCounter's counts timed on vpipe's
anchor (``scripts/corpus_baselines.py``): exact synthetic cases, no model.

vpipe's ``in`` is a move to the positive side of cross(end - start, anchor - start): for a line
drawn left to right, moving down; for one drawn bottom to top, moving right. Each case is also
driven through vpipe's own ``LineCounter``, so the expectations are held to the counter, not only
to this description of it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from pipeline.analytics.lines import DirectedSegment, LineCounter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from corpus_baselines import (
    LineZoneCounter,
    anchor_crossing_frame,
    line_zone_directions,
    object_counter_directions,
)

# Four ways to draw a line through (100, 100): a vertical one drawn up and down, a horizontal
# one drawn left to right and right to left.
UP, DOWN = ((100, 200), (100, 0)), ((100, 0), (100, 200))
RIGHTWARD, LEFTWARD = ((0, 100), (200, 100)), ((200, 100), (0, 100))


def track(anchors: list[tuple[float, float]]) -> list[sv.Detections]:
    """One tracked 20x20 box per frame, its bottom centre at each anchor."""
    return [
        sv.Detections(
            xyxy=np.array([[x - 10.0, y - 20.0, x + 10.0, y]]),
            class_id=np.array([2]),
            tracker_id=np.array([7]),
            data={"class_name": np.array(["car"])},
        )
        for x, y in anchors
    ]


def vpipe_direction(line: tuple, anchors: list[tuple[float, float]]) -> str:
    """The direction vpipe's LineCounter counts for a track through ``anchors``."""
    counter = LineCounter("main", *line)
    events = [event for index, frame in enumerate(track(anchors)) for event in counter.update(frame, index, index / 30)]
    assert len(events) == 1
    return events[0].direction


MOVING_RIGHT = [(80.0, 100.0), (120.0, 100.0)]
MOVING_LEFT = MOVING_RIGHT[::-1]
MOVING_DOWN = [(100.0, 80.0), (100.0, 120.0)]
MOVING_UP = MOVING_DOWN[::-1]


@pytest.mark.parametrize(
    ("line", "in_motion", "expected_in"),
    [
        (UP, MOVING_RIGHT, "in"),  # ObjectCounter: on a vertical line moving right is IN
        (DOWN, MOVING_RIGHT, "out"),
        (RIGHTWARD, MOVING_DOWN, "in"),  # on a horizontal line moving down is IN
        (LEFTWARD, MOVING_DOWN, "out"),
    ],
    ids=["vertical drawn up", "vertical drawn down", "horizontal drawn rightward", "horizontal drawn leftward"],
)
def test_object_counter_directions_follow_its_motion_rule(line, in_motion, expected_in):
    expected_out = {"in": "out", "out": "in"}[expected_in]
    assert object_counter_directions(*line) == {"IN": expected_in, "OUT": expected_out}
    assert vpipe_direction(line, in_motion) == expected_in
    assert vpipe_direction(line, in_motion[::-1]) == expected_out


def test_object_counter_judges_a_steep_diagonal_as_vertical():
    # |dx| 40 < |dy| 200: ObjectCounter calls it vertical, so moving right is IN; drawn top to
    # bottom and leaning right, moving right is vpipe's out.
    line = ((80, 0), (120, 200))
    assert object_counter_directions(*line) == {"IN": "out", "OUT": "in"}
    assert vpipe_direction(line, MOVING_RIGHT) == "out"


@pytest.mark.parametrize("line", [UP, DOWN, RIGHTWARD, LEFTWARD], ids=["up", "down", "rightward", "leftward"])
def test_line_zone_in_is_vpipe_out_whichever_way_the_line_is_drawn(line):
    # supervision's own example: a box rising across a line from (0, 100) to (200, 100) counts
    # "in", and rising across a line drawn left to right is vpipe's out.
    assert line_zone_directions(*line) == {"in": "out", "out": "in"}


@pytest.mark.parametrize(
    ("line", "motion"),
    [(UP, MOVING_RIGHT), (UP, MOVING_LEFT), (DOWN, MOVING_RIGHT), (RIGHTWARD, MOVING_DOWN), (LEFTWARD, MOVING_UP)],
)
def test_a_track_across_a_line_zone_counts_the_direction_vpipe_counts(line, motion):
    counter = LineZoneCounter("main", *line)
    crossings = [crossing for index, frame in enumerate(track(motion)) for crossing in counter.update(frame, index)]
    assert [(c.line, c.direction, c.frame, c.track_id) for c in crossings] == [
        ("main", vpipe_direction(line, motion), 1, 7)
    ]


def test_an_object_counter_count_is_timed_when_the_bottom_centre_crossed():
    # A tall vehicle driving down: its bottom centre crosses y=100 between frames 14 (y 97) and 15
    # (y 101); ObjectCounter, on the box centre, counts it at frame 21. Its box bobbed over the line
    # and back at frames 1 and 2, and it passes again at frame 41: both further from the count.
    path = [(0, (100.0, 90.0)), (1, (100.0, 110.0)), (2, (100.0, 90.0))]
    path += [(frame, (100.0, 81.0 + 4 * (frame - 10))) for frame in range(10, 30)]
    path += [(40, (100.0, 90.0)), (41, (100.0, 110.0))]
    assert anchor_crossing_frame(DirectedSegment(*RIGHTWARD), path, counted_at=21) == 15


def test_a_count_whose_bottom_centre_never_crossed_keeps_its_frame():
    # Seen only below the line (it entered the frame there), or passing beside the segment's end.
    below = [(frame, (100.0, 110.0 + frame)) for frame in range(5)]
    beside = [(0, (250.0, 90.0)), (1, (250.0, 110.0)), (2, (250.0, 120.0))]
    assert anchor_crossing_frame(DirectedSegment(*RIGHTWARD), below, counted_at=3) == 3
    assert anchor_crossing_frame(DirectedSegment(*RIGHTWARD), beside, counted_at=2) == 2


def test_a_clip_at_a_lower_rate_is_every_nth_frame_with_the_same_truth(tmp_path: Path):
    import argparse

    from eval_corpus import load_clips

    from pipeline.io.sources.files import open_source

    samples = Path(__file__).resolve().parent.parent / "sample_videos"
    truth = tmp_path / "truth"
    truth.mkdir()
    (truth / "road.yaml").write_text("clip: highway.mp4\nlines: {}\n")
    args = argparse.Namespace(truth=truth, clips=samples, only=None, output=tmp_path / "out")
    [full] = load_clips(args, 1)
    [third] = load_clips(args, 3)
    assert (full.path, full.step, full.label) == (samples / "highway.mp4", 1, "road")
    assert (third.step, third.label, third.fps) == (3, "road_every_3", full.fps)  # fps: the truth's clip's
    assert third.path == tmp_path / "out" / "clips" / "road_every_3.mp4"
    copy = open_source(str(third.path))
    try:
        assert copy.fps == pytest.approx(full.fps / 3)
        assert sum(1 for _ in copy) == 112  # frames 0, 3, ..., 333 of 335
    finally:
        copy.close()
