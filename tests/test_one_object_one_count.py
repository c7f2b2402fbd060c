"""One physical vehicle, one count: exact synthetic cases for the rules that keep a vehicle seen
twice (a lorry and its load, a rider and their bicycle) or cut off by the frame's edge from
counting twice or the wrong way, and that keep two real vehicles counting twice.

A line across y=200 from x=0 to x=640, drawn left to right: driving down the image is ``in``.
"""

from __future__ import annotations

import numpy as np
import supervision as sv

from pipeline.analytics.lines import LineCounter
from pipeline.config import Config, LineConfig
from pipeline.io.sources.files import Frame
from pipeline.run.frame_pipeline import FramePipeline


def line(same_object_overlap: float = 0.6) -> LineCounter:
    return LineCounter("h", (0, 200), (640, 200), min_crossing_distance=6, same_object_overlap=same_object_overlap)


def tracked(*boxes: tuple[int, str, list[float]]) -> sv.Detections:
    """Tracked detections: (track id, class name, [x1, y1, x2, y2]) each."""
    return sv.Detections(
        xyxy=np.array([box for _, _, box in boxes], dtype=float).reshape(-1, 4),
        class_id=np.zeros(len(boxes), int),
        tracker_id=np.array([track_id for track_id, _, _ in boxes], int),
        data={"class_name": np.array([name for _, name, _ in boxes], dtype=str)},
    )


def drive(counter: LineCounter, frames: list[list[tuple[int, str, list[float]]]]) -> list[tuple[int, str, str]]:
    """Feed one frame's boxes after another (10 fps); the (track, class, direction) of each count."""
    events = []
    for index, boxes in enumerate(frames):
        events += counter.update(tracked(*boxes), index, index / 10)
    return [(e.track_id, e.class_name, e.direction) for e in events]


def down(y_bottoms: list[float], *parts: tuple[int, str, float, float, float, float]) -> list[list]:
    """Frames of several boxes moving down together: (track, class, x1, x2, top offset, bottom offset)
    relative to a common bottom edge at each of ``y_bottoms``."""
    return [
        [(track, name, [x1, y + top, x2, y + bottom]) for track, name, x1, x2, top, bottom in parts] for y in y_bottoms
    ]


BOTTOMS = [150.0, 180.0, 210.0, 240.0, 270.0]


def test_a_lorry_and_its_load_seen_as_two_tracks_count_once():
    # The lorry's whole box, and a box of its body alone (the load above it cut off), both tracked:
    # the body's box lies entirely inside the lorry's and touches the road at the same place.
    frames = down(BOTTOMS, (1, "truck", 200, 380, -140, 0), (2, "truck", 201, 380, -90, 1))
    assert drive(line(), frames) == [(1, "truck", "in")]
    assert drive(line(same_object_overlap=1.0), frames) == [(1, "truck", "in"), (2, "truck", "in")]


def test_a_cab_confirmed_on_the_same_frame_as_its_lorry_counts_once():
    # The cab (a "car") inside the front of the lorry's box, the lorry driving toward the camera.
    frames = down(BOTTOMS, (1, "car", 260, 340, -50, 0), (2, "truck", 250, 350, -160, 0))
    assert drive(line(), frames) == [(1, "car", "in")]


def test_a_part_of_the_lorry_first_detected_after_it_counted_does_not_count():
    # The lorry counts on frame 2; from frame 3 the detector also boxes its upper part (load and cab,
    # the bottom 50 px cut off), a new track whose anchor crosses the line on frame 4.
    frames = down(BOTTOMS, (1, "truck", 200, 380, -140, 0), (2, "truck", 210, 370, -140, -50))
    frames = [[box for box in boxes if box[0] == 1 or index >= 3] for index, boxes in enumerate(frames)]
    assert drive(line(), frames) == [(1, "truck", "in")]
    assert drive(line(same_object_overlap=1.0), frames) == [(1, "truck", "in"), (2, "truck", "in")]


def test_a_rider_crossing_after_their_bicycle_counts_once():
    # The rider's box ends at the pedals, 20 px above the wheels: its anchor crosses a frame later.
    # At the bicycle's count two thirds of its box lies inside the rider's.
    frames = down(BOTTOMS, (1, "bicycle", 300, 340, -60, 0), (2, "person", 298, 342, -100, -20))
    assert drive(line(), frames) == [(1, "bicycle", "in")]
    assert drive(line(same_object_overlap=1.0), frames) == [(1, "bicycle", "in"), (2, "person", "in")]


def test_two_cars_side_by_side_that_overlap_a_little_count_twice():
    frames = down(BOTTOMS, (1, "car", 200, 300, -60, 0), (2, "car", 280, 380, -60, 0))
    assert drive(line(), frames) == [(1, "car", "in"), (2, "car", "in")]


def test_a_car_inside_a_box_drawn_around_two_cars_still_counts():
    # Seen from above: a car in the far lane (top 60 px) inside one box drawn around it and the car in
    # the near lane. The boxes touch the road a lane's width apart: two vehicles, two counts.
    frames = [
        [(1, "car", [200, y - 130, 360, y]), (2, "car", [200, y - 130, 360, y - 65])] for y in [150, 220, 290, 360]
    ]
    assert sorted(drive(line(), frames)) == [(1, "car", "in"), (2, "car", "in")]


def test_a_second_vehicle_through_the_same_place_later_counts():
    # A car follows the first through the same spot 3 s later: the boxes are never on one frame.
    first = down(BOTTOMS, (1, "car", 300, 360, -50, 0))
    second = down(BOTTOMS, (2, "car", 300, 360, -50, 0))
    assert drive(line(), first + [[]] * 25 + second) == [(1, "car", "in"), (2, "car", "in")]


def test_a_rider_who_crosses_after_their_bicycles_track_ended_counts_once():
    # The bicycle counts on frame 2, with the rider's box around it; its track then breaks off, so
    # when the rider's anchor crosses on frame 3 no counted track is on the same object any more:
    # the rider has to carry the count from frame 2.
    frames = down(BOTTOMS, (1, "bicycle", 300, 340, -60, 0), (2, "person", 298, 342, -100, -20))
    frames = frames[:3] + [[box for box in boxes if box[0] == 2] for boxes in frames[3:]]
    assert drive(line(), frames) == [(1, "bicycle", "in")]


def with_edges(boxes: sv.Detections, at_edge: list[bool]) -> sv.Detections:
    boxes.data["at_edge"] = np.array(at_edge)
    return boxes


def test_a_box_cut_off_by_the_frame_edge_counts_no_wrong_direction():
    # A car drives up, away from the camera, across the line; then the tracker gives its track a box
    # of the whole frame (the detector saw a "train"): its bottom edge, the frame's, is below the
    # line, which without the edge rule reads as the car driving back down.
    counter = line()
    up = [tracked((1, "car", [300, y - 40, 360, y])) for y in [230, 215, 195, 175, 160, 140]]
    whole_frame = [tracked((1, "car", [2, 1, 639, 239])) for _ in range(3)]
    frames = [with_edges(boxes, [False]) for boxes in up] + [with_edges(boxes, [True]) for boxes in whole_frame]
    events = [e for index, boxes in enumerate(frames) for e in counter.update(boxes, index, index / 10)]
    assert [(e.track_id, e.direction) for e in events] == [(1, "out")]


def test_the_frame_pipeline_marks_boxes_cut_off_by_the_left_right_or_bottom_edge():
    config = Config(lines=[LineConfig("h", (0, 200), (640, 200))])
    core = FramePipeline(config, fps=10.0, class_names={2: "car"}, frame_size=(640, 240))
    boxes = [[0, 50, 60, 100], [580, 50, 640, 100], [300, 200, 360, 240], [300, 0, 360, 100], [300, 50, 360, 100]]
    image = np.zeros((240, 640, 3), np.uint8)
    for index in range(2):  # a track is confirmed on its second sighting
        detections = sv.Detections(
            xyxy=np.array(boxes, dtype=float), confidence=np.full(5, 0.9), class_id=np.full(5, 2)
        )
        result = core.step(Frame(image, index, index / 10), detections)
    edges = dict(zip(map(tuple, result.tracked.xyxy.tolist()), result.tracked.data["at_edge"].tolist(), strict=True))
    assert edges == {
        (0, 50, 60, 100): True,  # left
        (580, 50, 640, 100): True,  # right
        (300, 200, 360, 240): True,  # bottom
        (300, 0, 360, 100): False,  # the top edge does not move a bottom-centre anchor
        (300, 50, 360, 100): False,
    }


def test_a_vehicle_after_a_change_of_resolution_does_not_take_over_the_state_of_one_before_it():
    # Car A drives down across the line at 640x240 and stays below it; the source then halves its
    # resolution (the line is now at y=100) and car B drives up, above the line, all the time. Were
    # B's track to reuse A's ID, B would start from A's last place, below the line, and cross 'out'.
    config = Config(lines=[LineConfig("h", (0, 200), (640, 200), min_crossing_distance=6)])
    core = FramePipeline(config, fps=10.0, class_names={2: "car"}, frame_size=(640, 240))

    def car(x: float, bottom: float, size: float) -> sv.Detections:
        box = [[x, bottom - size, x + size * 1.5, bottom]]
        return sv.Detections(xyxy=np.array(box, dtype=float), confidence=np.array([0.9]), class_id=np.array([2]))

    events, index = [], 0
    for bottom in [150, 170, 190, 210, 230, 230]:  # A, 60 x 40 px
        events += core.step(Frame(np.zeros((240, 640, 3), np.uint8), index, index / 10), car(300, bottom, 40)).events
        index += 1
    core.resize(320, 120)
    for bottom in [90, 85, 80, 75, 70]:  # B, 30 x 20 px
        events += core.step(Frame(np.zeros((120, 320, 3), np.uint8), index, index / 10), car(150, bottom, 20)).events
        index += 1
    assert [(e.direction, e.frame_index) for e in events] == [("in", 3)]
