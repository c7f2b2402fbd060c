"""Turning movements on synthetic tracks through a four-way intersection (exact expectations)."""

from __future__ import annotations

import re

import pytest

from pipeline.analytics import Analytics
from pipeline.analytics.movements import MovementCounter
from pipeline.config import load_config
from pipeline.errors import ConfigError
from tests.test_lines import frame_of

# A 400x400 crossing: four approach boxes around an empty centre at (200, 200).
APPROACHES = {
    "N": [(150, 0), (250, 0), (250, 100), (150, 100)],
    "E": [(300, 150), (400, 150), (400, 250), (300, 250)],
    "S": [(150, 300), (250, 300), (250, 400), (150, 400)],
    "W": [(0, 150), (100, 150), (100, 250), (0, 250)],
}
APPROACH_CONFIG = [{"name": name, "polygon": polygon} for name, polygon in APPROACHES.items()]
CENTRES = {"N": (200, 50), "E": (350, 200), "S": (200, 350), "W": (50, 200), "C": (200, 200)}
FPS = 10


def path(*stops: str, step_px: float = 20) -> list[tuple[float, float]]:
    """Anchor positions moving in straight legs of about ``step_px`` per frame between named points
    (every leg here is 150 px: 8 steps of 18.75 px, so no position falls on a box's edge)."""
    points = [CENTRES[stops[0]]]
    for stop in stops[1:]:
        (x0, y0), (x1, y1) = points[-1], CENTRES[stop]
        steps = max(1, round(max(abs(x1 - x0), abs(y1 - y0)) / step_px))
        points += [(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps) for i in range(1, steps + 1)]
    return points


def drive(counter: MovementCounter, positions: list, track_id: int = 1, class_name: str = "car", start: int = 0):
    """Feed one track (None: not detected on that frame), then empty frames until it is forgotten."""
    events = []
    frame_index = start
    for point in positions + [None] * int((counter.forget_after_s + 0.5) * FPS):
        detections = frame_of() if point is None else frame_of((track_id, *point, class_name))
        events += counter.update(detections, frame_index, frame_index / FPS)
        frame_index += 1
    return events


def new_counter(**kwargs) -> MovementCounter:
    return MovementCounter(APPROACHES, **{"min_outside_s": 0.5, "forget_after_s": 1.0, **kwargs})


@pytest.mark.parametrize("origin", list(APPROACHES))
@pytest.mark.parametrize("destination", list(APPROACHES))
def test_every_pair_through_the_centre_is_one_movement(origin: str, destination: str):
    counter = new_counter()
    positions = path(origin, "C", destination)
    events = drive(counter, positions)
    assert [(e.movement, e.origin, e.destination) for e in events] == [
        (f"{origin}->{destination}", origin, destination)
    ]
    # Reported on the first frame after the centre with the anchor strictly inside the destination box.
    (x0, y0), (x1, y1) = APPROACHES[destination][0], APPROACHES[destination][2]
    centre = positions.index(CENTRES["C"])
    expected_frame = next(i for i, (x, y) in enumerate(positions) if i > centre and x0 < x < x1 and y0 < y < y1)
    assert events[0].frame_index == expected_frame
    assert events[0].origin_frame == 0 and events[0].origin_s == 0.0
    assert events[0].travel_s == pytest.approx(events[0].frame_index / FPS)
    assert counter.total(origin, destination) == 1
    assert sum(counter.total(o, d) for o in APPROACHES for d in APPROACHES) == 1


def test_the_event_comes_on_the_frame_the_anchor_enters_the_exit():
    counter = new_counter()
    # x = 50, 150, 250, 290, 310: the E box starts at x=300, so frame 4 is the first inside it.
    events = drive(counter, [(x, 200) for x in (50, 150, 250, 290, 310, 350)])
    assert [(e.movement, e.frame_index, e.timestamp_s) for e in events] == [("W->E", 4, 0.4)]


def test_jitter_on_the_origin_s_edge_is_not_a_u_turn():
    counter = new_counter(min_outside_s=0.5)
    # Anchor alternates inside (95) and outside (105) the W box for 2 s, then drives east.
    jitter = [(95 if i % 2 == 0 else 105, 200) for i in range(20)]
    events = drive(counter, jitter + path("C", "E")[1:])
    assert [e.movement for e in events] == ["W->E"]


def test_a_u_turn_back_into_the_origin_after_time_outside():
    counter = new_counter(min_outside_s=0.5)
    events = drive(counter, path("W", "C", "W"))
    assert [e.movement for e in events] == ["W->W"]
    assert counter.summary()["counts"]["W->W"] == {"total": 1, "by_class": {"car": 1}, "turn": "u_turn"}


def test_a_track_lost_in_the_middle_and_found_again_keeps_its_origin():
    counter = new_counter(forget_after_s=1.0)
    positions = path("S", "C") + [None] * 8 + path("C", "N")[1:]  # 0.8 s unseen in the centre
    events = drive(counter, positions, track_id=5)
    assert [(e.movement, e.track_id, e.origin_frame) for e in events] == [("S->N", 5, 0)]


def feed_frames(counter: MovementCounter, frames: list[list[tuple[int, float, float]] | None]) -> list:
    """Feed frames of (track_id, x, y) cars (None: no frame arrives), then empty frames until every
    track is forgotten."""
    events = []
    for frame_index, cars in enumerate(frames + [[]] * int((counter.forget_after_s + 0.5) * FPS)):
        if cars is None:
            continue
        detections = frame_of(*[(track_id, x, y, "car") for track_id, x, y in cars])
        events += counter.update(detections, frame_index, frame_index / FPS)
    return events


def switched(
    positions: list, lost: range, old_id: int, new_id: int, offset_px: tuple[float, float] = (0, 0), stall: bool = False
) -> list:
    """One car's frames: ``old_id`` before the frames in ``lost``, unseen in them (or, with ``stall``,
    no frames at all), then ``new_id`` (its anchor moved by ``offset_px`` from the true position)."""
    return [
        (None if stall else [])
        if i in lost
        else [(old_id, x, y)]
        if i < lost.start
        else [(new_id, x + offset_px[0], y + offset_px[1])]
        for i, (x, y) in enumerate(positions)
    ]


def test_a_track_lost_in_the_middle_and_found_again_under_a_new_id_keeps_its_origin():
    counter = new_counter(forget_after_s=1.0)
    positions = path("S", "C", "N", step_px=10)  # 10 px per frame, at the centre on frame 15
    # Unseen on frames 13..15, then a new ID near its path; frame_of's boxes are 20x20 px, so the gate
    # is 10 px each way around where it would be.
    events = feed_frames(counter, switched(positions, range(13, 16), old_id=5, new_id=9, offset_px=(9, -9)))
    assert [(e.movement, e.track_id, e.origin_frame) for e in events] == [("S->N", 9, 0)]
    assert counter.summary()["stayed_in_origin"] == {} and counter.tracks_held == 0


@pytest.mark.parametrize(
    ("offset_px", "frame_index"),
    [((11, 0), 25), ((0, -11), 24)],
    ids=["beside-the-path", "ahead-of-the-path"],
)
def test_a_new_id_outside_the_gate_first_seen_in_the_box_continues_the_lost_track(
    offset_px: tuple[float, float], frame_index: int
):
    counter = new_counter(forget_after_s=1.0)
    positions = path("S", "C", "N", step_px=10)
    events = feed_frames(counter, switched(positions, range(13, 16), old_id=5, new_id=9, offset_px=offset_px))
    # Too far off for continue_vanished, but the new ID's path leads back to S, where the lost car came
    # from; its anchor (y = 350 - 10 * frame, moved by the offset) reaches N's edge (y = 100) on frame 25 or 24.
    assert [(e.movement, e.track_id, e.origin_frame, e.frame_index, e.inferred) for e in events] == [
        ("S->N", 9, 0, frame_index, True)
    ]
    assert counter.summary()["stayed_in_origin"] == {} and counter.tracks_held == 0


@pytest.mark.parametrize("stall", [False, True], ids=["after-forget_after_s", "after-a-stall"])
def test_a_new_id_after_forget_after_s_is_another_track(stall: bool):
    counter = new_counter(forget_after_s=1.0)
    positions = path("S", "C", "N", step_px=10)
    # Unseen for 1.2 s (or no frames for 1.2 s: a live feed that stalled), last seen on frame 9.
    events = feed_frames(counter, switched(positions, range(10, 21), old_id=5, new_id=9, stall=stall))
    # Each counts on its own, both inferred: the lost car by where it was heading, the new ID (first
    # seen in the box on frame 21, y = 350 - 10 * 21 = 140) by where it came from; its anchor reaches
    # N's edge (y = 100) on frame 25.
    assert [(e.movement, e.track_id, e.origin_frame, e.frame_index, e.inferred) for e in events] == [
        ("S->N", 5, 0, 9, True),
        ("S->N", 9, 21, 25, True),
    ]


def test_new_ids_continue_the_nearest_vanished_tracks_each_once():
    counter = new_counter(forget_after_s=1.0)
    # Two cars at 5 px per frame meet at the centre on frame 30, both unseen on frames 29 and 30. On
    # frame 31 each new anchor lies inside both gates (5 px off the other's prediction, 0 px off its own).
    west = switched(path("W", "C", "E", step_px=5), range(29, 31), old_id=1, new_id=12)
    south = switched(path("S", "C", "N", step_px=5), range(29, 31), old_id=2, new_id=11)
    # The detector lists them in the other order after the loss (first-come pairing would swap them).
    frames = [a + b if i < 29 else b + a for i, (a, b) in enumerate(zip(west, south, strict=True))]
    events = feed_frames(counter, frames)
    assert sorted((e.movement, e.track_id) for e in events) == [("S->N", 11), ("W->E", 12)]


def test_a_track_that_never_exits_is_reported_at_its_last_sighting():
    counter = new_counter(forget_after_s=1.0)
    positions = path("E", "C") + [CENTRES["C"]] * 6  # stops in the centre (no heading) and is never seen again
    events = drive(counter, positions, track_id=3, class_name="truck")
    assert [(e.movement, e.origin, e.destination, e.class_name) for e in events] == [("E->?", "E", None, "truck")]
    assert events[0].frame_index == len(positions) - 1
    assert events[0].timestamp_s == pytest.approx((len(positions) - 1) / FPS)
    assert counter.summary()["counts"]["E->?"] == {"total": 1, "by_class": {"truck": 1}}
    assert counter.tracks_held == 0


def test_a_track_first_seen_outside_every_approach_comes_from_the_first_one_it_enters():
    counter = new_counter()
    positions = [(10, 300), (30, 270), (50, 230), *path("W", "C", "E")]  # appears below W, drives into it
    events = drive(counter, positions)
    assert [(e.movement, e.origin_frame, e.origin_s) for e in events] == [("W->E", 2, 0.2)]


def test_a_track_in_no_approach_is_no_movement():
    counter = new_counter()
    assert drive(counter, [(200, 200), (210, 200), (220, 200)]) == []
    assert counter.summary()["stayed_in_origin"] == {} and counter.tracks_held == 0


def test_a_track_that_never_leaves_its_origin_is_no_movement_but_is_counted_as_stayed():
    counter = new_counter()
    events = drive(counter, [(50, 200), (60, 200), (70, 200)])
    assert events == []
    assert counter.summary()["stayed_in_origin"] == {"W": 1}


def test_one_movement_per_track_and_classes_counted_apart():
    counter = new_counter()
    events = drive(counter, path("W", "C", "E", "C", "N"), track_id=1, class_name="car")  # E then N: W->E only
    events += drive(counter, path("W", "C", "E"), track_id=2, class_name="bus", start=100)
    assert [e.movement for e in events] == ["W->E", "W->E"]
    assert counter.counts[("W", "E")] == {"car": 1, "bus": 1}
    summary = counter.summary()["counts"]
    assert list(summary)[:16] == [f"{o}->{d}" for o in APPROACHES for d in APPROACHES]
    assert summary["W->E"] == {"total": 2, "by_class": {"bus": 1, "car": 1}, "turn": "through"}
    assert summary["N->S"] == {"total": 0, "by_class": {}, "turn": "through"}


def test_memory_is_bounded_by_the_tracks_on_screen():
    counter = new_counter(forget_after_s=1.0)
    frame_index = 0
    for track_id in range(1, 201):  # 200 cars one after another, each seen for 5 frames
        for x in (50, 150, 250, 350, 360):
            counter.update(frame_of((track_id, x, 200, "car")), frame_index, frame_index / FPS)
            frame_index += 1
        assert counter.tracks_held <= 1 + int(counter.forget_after_s * FPS / 5) + 1
    assert counter.total("W", "E") == 200


def test_analytics_adds_movement_columns_events_and_summary():
    config = load_config(None, {"movements": {"approaches": APPROACH_CONFIG}})
    analytics = Analytics.for_run(config)
    assert analytics.columns[:4] == ["N->N", "N->E", "N->S", "N->W"] and len(analytics.columns) == 16
    events = []
    for frame_index, point in enumerate(path("N", "C", "W")):
        events += analytics.update(frame_of((9, *point, "car")), frame_index, frame_index / FPS)
    assert [e.to_record()["event"] for e in events] == ["movement"]
    assert events[0].to_record()["movement"] == "N->W"
    assert analytics.row()["N->W"] == 1 and analytics.row()["W->N"] == 0
    assert analytics.summary(1.0).movements["counts"]["N->W"]["total"] == 1


def test_rescale_follows_the_approaches():
    counter = new_counter()
    counter.rescale(2.0, 2.0)  # the source doubled its resolution: W is now x 0..200, y 300..500
    events = drive(counter, [(100, 400), (300, 400), (500, 400), (700, 400)])
    assert [e.movement for e in events] == ["W->E"]


@pytest.mark.parametrize(
    ("movements", "message"),
    [
        ({"approaches": [{"name": "A", "polygon": [[0, 0], [1, 0], [1, 1]]}]}, "movements: approaches: a movement"),
        ({"approaches": [{"name": "A->B", "polygon": [[0, 0], [1, 0], [1, 1]]}]}, "movements.approaches[0].name"),
        ({"approaches": [{"name": "A", "polygon": [[0, 0], [1, 0]]}]}, "movements.approaches[0].polygon"),
        ({"min_outside_s": -1}, "movements.min_outside_s"),
        ({"aproaches": []}, "unknown key 'movements.aproaches' (did you mean 'approaches'?)"),
        (
            {"approaches": [{"name": "A", "polygon": [[0, 0], [1, 0], [1, 1]]}] * 2},
            "movements.approaches: names must be unique, A repeated",
        ),
    ],
)
def test_bad_movement_config_names_the_key(movements: dict, message: str):
    with pytest.raises(ConfigError, match=r"^" + re.escape(message)):
        load_config(None, {"movements": movements})


def test_an_approach_outside_the_frame_is_an_error():
    config = load_config(None, {"movements": {"approaches": APPROACH_CONFIG}})
    with pytest.raises(ConfigError, match=r"movements.approaches\[1\] \(E\): point \(400, 150\) is outside the 399x"):
        config.validate_geometry(399, 400)
