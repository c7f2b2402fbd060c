"""Exact line-crossing cases on synthetic tracks: no model, the same counter the pipeline uses."""

from __future__ import annotations

import numpy as np
import supervision as sv

from pipeline.analytics.lines import Lane, LineCounter


def frame_of(*objects: tuple[int | None, float, float, str]) -> sv.Detections:
    """Detections whose box bottom-centre (the anchor) is at (x, y); ``track_id`` None means untracked."""
    xyxy = np.array([[x - 10, y - 20, x + 10, y] for _, x, y, _ in objects], dtype=float).reshape(-1, 4)
    track_ids = [t for t, _, _, _ in objects]
    return sv.Detections(
        xyxy=xyxy,
        class_id=np.zeros(len(objects), int),
        tracker_id=None if any(t is None for t in track_ids) else np.array(track_ids, int),
        data={"class_name": np.array([c for _, _, _, c in objects], dtype=str)},
    )


def feed(counter: LineCounter, path: list[tuple[float, float]], track_id: int = 1, class_name: str = "car") -> list:
    events = []
    for frame_index, (x, y) in enumerate(path):
        events += counter.update(frame_of((track_id, x, y, class_name)), frame_index, frame_index / 30)
    return events


def horizontal(min_crossing_distance: float = 0.0) -> LineCounter:
    return LineCounter("h", start=(100, 200), end=(500, 200), min_crossing_distance=min_crossing_distance)


def test_moving_down_across_a_left_to_right_line_is_in():
    counter = horizontal()
    events = feed(counter, [(300, 150), (300, 190), (300, 210), (300, 260)])
    assert [(e.direction, e.frame_index, e.track_id, e.class_name) for e in events] == [("in", 2, 1, "car")]
    assert counter.crossings_in == {"car": 1} and counter.out_total == 0


def test_moving_up_is_out():
    counter = horizontal()
    events = feed(counter, [(300, 260), (300, 210), (300, 190)])
    assert [e.direction for e in events] == ["out"]
    assert counter.crossings_out == {"car": 1} and counter.in_total == 0


def test_line_drawn_right_to_left_flips_direction():
    counter = LineCounter("r", start=(500, 200), end=(100, 200))
    assert [e.direction for e in feed(counter, [(300, 150), (300, 250)])] == ["out"]


def test_vertical_line_drawn_downward_counts_leftward_motion_as_in():
    counter = LineCounter("v", start=(320, 0), end=(320, 150))
    assert [e.direction for e in feed(counter, [(400, 100), (330, 100), (310, 100)])] == ["in"]
    counter = LineCounter("v", start=(320, 0), end=(320, 150))
    assert [e.direction for e in feed(counter, [(250, 100), (330, 100)])] == ["out"]


def test_diagonal_line():
    counter = LineCounter("d", start=(0, 0), end=(400, 400))
    # Below-left of the diagonal is the positive (in) side: cross((400,400), (x,y)) = 400*y - 400*x > 0 for y > x.
    assert [e.direction for e in feed(counter, [(300, 100), (220, 180), (180, 220)])] == ["in"]


def test_jump_over_the_line_between_two_frames_counts():
    counter = horizontal()
    assert [e.direction for e in feed(counter, [(300, 20), (300, 380)])] == ["in"]


def test_passing_beside_the_segment_end_does_not_count():
    counter = horizontal()
    assert feed(counter, [(520, 150), (520, 250)]) == []
    assert feed(LineCounter("h", (100, 200), (500, 200)), [(80, 150), (90, 250)], track_id=2) == []


def test_motion_through_an_end_point_counts():
    counter = horizontal()
    assert [e.direction for e in feed(counter, [(500, 150), (500, 250)])] == ["in"]


JITTER = [(300, 190), (300, 205), (300, 195), (300, 206), (300, 194), (300, 250)]


def test_without_hysteresis_jitter_counts_each_direction_once():
    counter = horizontal(min_crossing_distance=0)
    assert [e.direction for e in feed(counter, JITTER)] == ["in", "out"]


def test_hysteresis_jitter_on_the_line_counts_once():
    counter = horizontal(min_crossing_distance=10)
    events = feed(counter, JITTER)
    assert [(e.direction, e.frame_index) for e in events] == [("in", 5)]
    assert counter.in_total == 1 and counter.out_total == 0


def test_cross_and_return_counts_in_then_out_when_far_enough_each_time():
    counter = horizontal(min_crossing_distance=10)
    events = feed(counter, [(300, 150), (300, 230), (300, 150)])
    assert [(e.direction, e.frame_index) for e in events] == [("in", 1), ("out", 2)]


def test_cross_and_return_within_the_hysteresis_counts_nothing():
    counter = horizontal(min_crossing_distance=10)
    assert feed(counter, [(300, 150), (300, 205), (300, 208), (300, 150)]) == []


def test_a_crossing_is_confirmed_when_the_anchor_gets_far_enough():
    counter = horizontal(min_crossing_distance=10)
    events = feed(counter, [(300, 150), (300, 203), (300, 207), (300, 212), (300, 260)])
    assert [(e.direction, e.frame_index) for e in events] == [("in", 3)]


def test_crossing_then_vanishing_before_confirmation_does_not_count():
    counter = horizontal(min_crossing_distance=10)
    assert feed(counter, [(300, 190), (300, 204)]) == []
    assert counter.in_total == 0


def test_confirmation_beyond_the_segment_end_still_counts():
    # Crosses inside the segment, then drifts past its end while getting far enough.
    counter = horizontal(min_crossing_distance=10)
    assert [e.direction for e in feed(counter, [(495, 190), (498, 204), (540, 230)])] == ["in"]


def test_resting_on_the_line_then_leaving_counts_by_where_it_came_from_and_went():
    counter = horizontal()
    assert [e.direction for e in feed(counter, [(300, 150), (300, 200), (300, 200), (300, 250)])] == ["in"]
    counter = horizontal()
    assert feed(counter, [(300, 150), (300, 200), (300, 150)]) == []


def test_first_sighting_beyond_the_line_is_not_a_crossing():
    counter = horizontal()
    assert feed(counter, [(300, 250), (300, 260)]) == []


def test_untracked_detections_never_count():
    counter = horizontal()
    for frame_index, y in enumerate([150, 250]):
        assert counter.update(frame_of((None, 300, y, "car")), frame_index, frame_index / 30) == []
    assert counter.in_total == 0 and counter.tracks_held == 0


def test_several_tracks_and_classes_in_one_frame():
    counter = horizontal()
    counter.update(frame_of((1, 200, 150, "car"), (2, 300, 250, "truck"), (3, 400, 150, "bus")), 0, 0.0)
    events = counter.update(frame_of((1, 200, 250, "car"), (2, 300, 150, "truck"), (3, 400, 160, "bus")), 1, 0.033)
    assert sorted((e.track_id, e.direction) for e in events) == [(1, "in"), (2, "out")]
    assert counter.crossings_in == {"car": 1} and counter.crossings_out == {"truck": 1}


def test_state_of_vanished_tracks_is_forgotten():
    counter = LineCounter("h", (100, 200), (500, 200), forget_after_s=1.0)
    for track_id in range(1, 101):
        counter.update(frame_of((track_id, 300, 150, "car")), track_id, track_id * 0.1)
    # Tracks last seen more than 1 s before the latest frame are dropped: 10 frames at 0.1 s remain.
    assert counter.tracks_held == 11
    counter.update(frame_of(), 200, 100.0)
    assert counter.tracks_held == 0


def test_lanes_attribute_each_crossing_to_its_sub_segment():
    lanes = [Lane("left", (100, 200), (300, 200)), Lane("right", (300, 200), (500, 200))]
    counter = LineCounter("h", (100, 200), (500, 200), lanes=lanes)
    counter.update(frame_of((1, 150, 150, "car"), (2, 450, 250, "car"), (3, 350, 150, "car")), 0, 0.0)
    events = counter.update(frame_of((1, 150, 250, "car"), (2, 450, 150, "car"), (3, 350, 250, "car")), 1, 0.03)
    assert sorted((e.track_id, e.direction, e.lane) for e in events) == [
        (1, "in", "left"),
        (2, "out", "right"),
        (3, "in", "right"),
    ]
    assert counter.lane_counts == {"left": {"in": 1}, "right": {"in": 1, "out": 1}}


def test_lane_of_a_diagonal_crossing_is_where_the_motion_meets_the_line():
    lanes = [Lane("a", (100, 200), (200, 200)), Lane("b", (200, 200), (500, 200))]
    counter = LineCounter("h", (100, 200), (500, 200), lanes=lanes)
    # Starts above lane a and ends below lane b: it meets y=200 half way, at x=210, which is in b.
    events = feed(counter, [(150, 150), (270, 250)])
    assert [e.lane for e in events] == ["b"]


def test_a_track_lost_briefly_keeps_its_side():
    counter = horizontal()
    counter.update(frame_of((1, 300, 150, "car")), 0, 0.0)
    counter.update(frame_of(), 1, 0.03)  # missed detection
    events = counter.update(frame_of((1, 300, 250, "car")), 2, 0.07)
    assert [e.direction for e in events] == ["in"]


def test_crossed_s_is_when_the_anchor_was_on_the_line_not_when_the_count_was_confirmed():
    # 30 fps, 8 px a frame: the anchor is 5 px short of y=200 at frame 2 (1/15 s) and 3 px past it at
    # frame 3, so on the line 5/8 of a frame after frame 2; confirmed 10 px past, at frame 4.
    counter = horizontal(min_crossing_distance=10)
    [event] = feed(counter, [(300, 179), (300, 187), (300, 195), (300, 203), (300, 211)])
    assert (event.frame_index, event.timestamp_s) == (4, 4 / 30)
    assert event.crossed_s == round((2 + 5 / 8) / 30, 4)


def test_after_a_gap_in_the_track_crossed_s_falls_between_the_sightings_either_side():
    # Last seen 20 px before the line at 1.0 s, next 60 px past it at 3.0 s (a dropout of 2 s).
    counter = horizontal(min_crossing_distance=10)
    counter.update(frame_of((1, 300, 180, "car")), 30, 1.0)
    [event] = counter.update(frame_of((1, 300, 260, "car")), 90, 3.0)
    assert (event.timestamp_s, event.crossed_s) == (3.0, 1.5)
