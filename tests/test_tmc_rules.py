"""Turning-movement count rules on exact synthetic tracks: left/through/right/U from the approaches'
geometry (a square and a skewed four-leg layout), class groups, pedestrians per crosswalk (never in
movements) and bicycles apart from vehicles."""

from __future__ import annotations

import math

import pytest

from pipeline.analytics import Analytics
from pipeline.analytics.approaches import Approach
from pipeline.analytics.crosswalks import CrosswalkCounter
from pipeline.analytics.turns import turn_table
from pipeline.config import load_config
from pipeline.errors import ConfigError
from tests.test_lines import frame_of
from tests.test_movements import APPROACH_CONFIG, APPROACHES, FPS, drive, new_counter, path

# What a driver does, said from the driver's seat: coming from the north (driving south), the west leg
# is on the right hand and the east leg on the left.
SQUARE_TURNS = {
    "N": {"N": "u_turn", "E": "left", "S": "through", "W": "right"},
    "E": {"N": "right", "E": "u_turn", "S": "left", "W": "through"},
    "S": {"N": "through", "E": "right", "S": "u_turn", "W": "left"},
    "W": {"N": "left", "E": "through", "S": "right", "W": "u_turn"},
}


def test_turns_of_a_square_four_leg_intersection():
    approaches = {name: Approach.of(polygon) for name, polygon in APPROACHES.items()}
    table = turn_table(approaches, (200.0, 200.0))
    assert {o: {d: table[o, d] for d in APPROACHES} for o in APPROACHES} == SQUARE_TURNS


def _leg(bearing_deg: float, distance: float = 150.0, half: float = 40.0) -> tuple[list, list]:
    """A square polygon centred ``distance`` from (200, 200) at ``bearing_deg`` (clockwise from east on
    the image), and a gate across the leg at its inner edge, the intersection on the gate's right."""
    ux, uy = math.cos(math.radians(bearing_deg)), math.sin(math.radians(bearing_deg))
    cx, cy = 200 + ux * distance, 200 + uy * distance
    px, py = -uy, ux  # across the leg
    polygon = [
        (cx + sx * half * ux + sy * half * px, cy + sx * half * uy + sy * half * py)
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))
    ]
    ix, iy = cx - ux * half, cy - uy * half  # the gate at the edge toward the centre
    a, b = (ix + half * px, iy + half * py), (ix - half * px, iy - half * py)
    return polygon, [b, a]


# The east-west road runs 30 degrees off square: its east leg lies 30 degrees below east (toward
# the south), its west leg 30 degrees above west. From the south (driving north) the east leg is a
# sharp right (120 degrees), the west leg a gentle left (60); from the west leg the east leg is straight on.
SKEWED_BEARINGS = {"N": -90.0, "E": 30.0, "S": 90.0, "W": 210.0}
SKEWED_TURNS = {
    "N": {"N": "u_turn", "E": "left", "S": "through", "W": "right"},
    "E": {"N": "right", "E": "u_turn", "S": "left", "W": "through"},
    "S": {"N": "through", "E": "right", "S": "u_turn", "W": "left"},
    "W": {"N": "left", "E": "through", "S": "right", "W": "u_turn"},
}


@pytest.mark.parametrize("drawn_as", ["polygon", "gate", "mixed"])
def test_turns_of_a_skewed_four_leg_intersection(drawn_as: str):
    """Polygons, gates, or gates on the north-south road and polygons on the other."""
    legs = {name: _leg(bearing) for name, bearing in SKEWED_BEARINGS.items()}
    gates = {"polygon": "", "gate": "NESW", "mixed": "NS"}[drawn_as]
    approaches = {
        name: Approach.placed(None, gate) if name in gates else Approach.placed(polygon, None)
        for name, (polygon, gate) in legs.items()
    }
    table = turn_table(approaches, (200.0, 200.0))
    assert {o: {d: table[o, d] for d in SKEWED_BEARINGS} for o in SKEWED_BEARINGS} == SKEWED_TURNS


def test_a_movement_event_and_the_summary_carry_the_turn():
    counter = new_counter()
    events = drive(counter, path("W", "C", "N"))
    assert [(e.movement, e.turn) for e in events] == [("W->N", "left")]
    assert events[0].to_record()["turn"] == "left"
    assert counter.summary()["counts"]["W->S"]["turn"] == "right"


def test_events_and_summaries_carry_the_class_group():
    config = load_config(
        None,
        {
            "movements": {"approaches": APPROACH_CONFIG},
            "lines": [{"name": "mid", "start": [120, 0], "end": [120, 400]}],
            "class_groups": [
                {"name": "light", "classes": ["car", "motorcycle"]},
                {"name": "heavy", "classes": ["truck", "bus"], "kind": "heavy"},
            ],
        },
    )
    analytics = Analytics.for_run(config)
    events = []
    for track_id, class_name in ((1, "car"), (2, "bus"), (3, "kite")):
        start = (track_id - 1) * 40
        for offset, point in enumerate(path("W", "C", "E")):
            frame_index = start + offset
            events += analytics.update(frame_of((track_id, *point, class_name)), frame_index, frame_index / FPS)
    records = [e.to_record() for e in events]
    assert [(r["event"], r["class_name"], r["class_group"]) for r in records if r["event"] == "movement"] == [
        ("movement", "car", "light"),
        ("movement", "bus", "heavy"),
        ("movement", "kite", "other"),
    ]
    assert [r["class_group"] for r in records if r["event"] == "line_crossing"] == ["light", "heavy", "other"]
    summary = analytics.summary(20.0)
    assert summary.movements["counts"]["W->E"]["by_group"] == {"light": 1, "heavy": 1, "other": 1}
    assert summary.lines["mid"]["out_by_group"] == {"light": 1, "heavy": 1, "other": 1}


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([{"name": "a", "classes": ["car"]}, {"name": "b", "classes": ["car"]}], "class_groups[1].classes (b): 'car'"),
        ([{"name": "all", "classes": ["car"]}], "class_groups[0].name: expected a non-empty name other than 'all'"),
        ([{"name": "a", "classes": ["car"], "kind": "lorry"}], "class_groups[0].kind: expected vehicle, heavy"),
        ([{"name": "a"}, {"name": "a"}], "class_groups: names must be unique, a repeated"),
    ],
)
def test_bad_class_groups_name_the_file_and_key(tmp_path, groups: list, message: str):
    path_ = tmp_path / "groups.yaml"
    path_.write_text(f"class_groups: {groups}\n".replace("'", '"'))
    with pytest.raises(ConfigError) as error:
        load_config(path_)
    assert str(error.value).startswith(f"{path_}: ") and message in str(error.value)


def _walk(counter: CrosswalkCounter, points: list, track_id: int = 1, class_name: str = "person") -> list:
    events = []
    for frame_index, point in enumerate(points + [None] * int((counter.forget_after_s + 0.5) * FPS)):
        detections = frame_of() if point is None else frame_of((track_id, *point, class_name))
        events += counter.update(detections, frame_index, frame_index / FPS)
    return events


# A crosswalk across the north leg: 100 px from kerb (x=150) to kerb (x=250), 20 px deep.
ZEBRA = [(150, 110), (250, 110), (250, 130), (150, 130)]


def test_a_pedestrian_walking_across_a_crosswalk_polygon_counts_once():
    counter = CrosswalkCounter("N", polygon=ZEBRA, forget_after_s=1.0)
    there = [(140 + 10 * i, 120) for i in range(13)]  # 140 -> 260, in from 150 to 250
    back = list(reversed(there))
    events = _walk(counter, there + back)
    assert [(e.crosswalk, e.direction, e.frame_index) for e in events] == [("N", None, 12)]
    assert counter.counts[None] == 1


def test_a_pedestrian_waiting_on_the_kerb_inside_the_polygon_does_not_count():
    counter = CrosswalkCounter("N", polygon=ZEBRA, forget_after_s=1.0)
    waiting = [(152 + (i % 2) * 6, 120) for i in range(40)] + [(140, 120)]  # jitters, then walks away
    assert _walk(counter, waiting) == []


def test_a_pedestrian_lost_halfway_across_counts_if_it_walked_half_the_crosswalk():
    far = CrosswalkCounter("N", polygon=ZEBRA, forget_after_s=1.0)
    near = CrosswalkCounter("N", polygon=ZEBRA, forget_after_s=1.0)
    assert len(_walk(far, [(140 + 10 * i, 120) for i in range(8)])) == 1  # 160 -> 210 inside: 60 px of 100
    assert _walk(near, [(140 + 10 * i, 120) for i in range(5)]) == []  # 160 -> 180: 30 px


def test_a_crosswalk_line_counts_each_direction():
    counter = CrosswalkCounter("N", line=[(200, 100), (200, 140)], min_crossing_distance=6.0, forget_after_s=1.0)
    events = _walk(counter, [(140 + 10 * i, 120) for i in range(13)], track_id=1)
    events += _walk(counter, [(260 - 10 * i, 120) for i in range(13)], track_id=2)
    assert sorted((e.track_id, e.direction) for e in events) == [(1, "out"), (2, "in")]


def test_a_crosswalk_crossing_carries_when_it_happened_not_when_it_was_confirmed():
    """At 10 fps, 20 px a frame along y=120. The polygon (x 150..250, 100 px long): in at x=160 (0.1 s),
    50 px walked at x=210, half way from 200 (0.3 s) to 220 (0.4 s): 0.35 s; confirmed when it leaves,
    at x=260 (0.6 s). The line at x=200: crossed 3/4 of the way from 185 (0.2 s) to 205 (0.3 s), 0.275 s;
    confirmed 6 px beyond it, at x=225 (0.4 s)."""
    polygon = CrosswalkCounter("N", polygon=ZEBRA, forget_after_s=1.0)
    (walked,) = _walk(polygon, [(140 + 20 * i, 120) for i in range(8)])
    assert (walked.timestamp_s, walked.crossed_s) == (pytest.approx(0.6), pytest.approx(0.35))
    line = CrosswalkCounter("N", line=[(200, 100), (200, 140)], min_crossing_distance=6.0, forget_after_s=1.0)
    (crossed,) = _walk(line, [(145 + 20 * i, 120) for i in range(8)])
    assert (crossed.timestamp_s, crossed.crossed_s) == (pytest.approx(0.4), pytest.approx(0.275))
    assert crossed.to_record()["crossed_s"] == pytest.approx(0.275)


def test_pedestrians_count_on_crosswalks_and_never_as_movements_bicycles_apart_from_vehicles():
    config = load_config(
        None,
        {
            "movements": {
                "approaches": APPROACH_CONFIG,
                "crosswalks": [{"name": "middle", "line": [[200, 150], [200, 250]]}],
            }
        },
    )
    analytics = Analytics.for_run(config)
    events = []
    frame_index = 0
    for track_id, class_name in ((1, "person"), (2, "bicycle"), (3, "car")):
        for point in path("W", "C", "E") + [None] * 25:
            detections = frame_of() if point is None else frame_of((track_id, *point, class_name))
            events += analytics.update(detections, frame_index, frame_index / FPS)
            frame_index += 1
    records = [e.to_record() for e in events]
    assert [(r["event"], r["class_group"]) for r in records] == [
        ("crosswalk_crossing", "pedestrians"),
        ("movement", "bicycles"),
        ("movement", "cars"),
    ]
    summary = analytics.summary(frame_index / FPS)
    assert summary.movements["counts"]["W->E"]["by_group"] == {"cars": 1, "bicycles": 1}
    assert summary.crosswalks == {"middle": {"total": 1, "in": 0, "out": 1}}


def test_a_crosswalk_config_names_the_key(tmp_path):
    path_ = tmp_path / "walk.yaml"
    crosswalk = "{name: N, line: [[0, 0], [10, 0]], polygon: [[0, 0], [1, 0], [1, 1]]}"
    path_.write_text(f"movements:\n  crosswalks:\n    - {crosswalk}\n")
    with pytest.raises(ConfigError, match=r"walk.yaml: movements.crosswalks\[0\]: give a line or a polygon"):
        load_config(path_)


def test_crosswalks_without_a_pedestrian_class_kept_are_refused(tmp_path):
    path_ = tmp_path / "walk.yaml"
    path_.write_text("model: {classes: [car]}\nmovements:\n  crosswalks: [{name: N, line: [[0, 0], [10, 0]]}]\n")
    with pytest.raises(
        ConfigError, match=r"walk.yaml: movements.crosswalks: model.classes keeps no pedestrian class \(person\)"
    ):
        load_config(path_)


def test_counts_csv_has_a_cumulative_column_per_crosswalk_and_direction_and_the_overlay_its_count():
    """Crosswalks without approaches: a polygon and a line, three pedestrians walking across both (two
    one way, one the other) and a car that drives the same path (never counted there)."""
    config = load_config(
        None,
        {
            "movements": {
                "crosswalks": [
                    {"name": "zebra", "polygon": [list(p) for p in ZEBRA]},
                    {"name": "kerb", "line": [[200, 100], [200, 140]]},
                ]
            }
        },
    )
    analytics = Analytics.for_run(config)
    assert analytics.columns == ["ped_zebra", "ped_kerb_in", "ped_kerb_out"]
    there = [(140 + 10 * i, 120) for i in range(13)]
    walks = [(1, "person", there), (2, "person", list(reversed(there))), (3, "car", there), (4, "person", there)]
    events, rows, frame_index = [], [], 0
    for track_id, class_name, points in walks:
        for point in points + [None] * 40:
            detections = frame_of() if point is None else frame_of((track_id, *point, class_name))
            events += analytics.update(detections, frame_index, frame_index / FPS)
            rows.append(analytics.row())
            frame_index += 1
    crossings = [e for e in events if e.to_record()["event"] == "crosswalk_crossing"]
    assert len(crossings) == len(events) == 6
    assert rows[-1] == {
        "ped_zebra": sum(e.crosswalk == "zebra" for e in crossings),
        "ped_kerb_in": sum(e.crosswalk == "kerb" and e.direction == "in" for e in crossings),
        "ped_kerb_out": sum(e.crosswalk == "kerb" and e.direction == "out" for e in crossings),
    }
    assert rows[-1] == {"ped_zebra": 3, "ped_kerb_in": 1, "ped_kerb_out": 2}
    assert rows[0] == {"ped_zebra": 0, "ped_kerb_in": 0, "ped_kerb_out": 0}  # cumulative from nothing
    view = analytics.movements_view()  # what movements.png draws: crosswalks, no approaches
    assert view is not None and view.approaches == {}
    assert [(w.name, w.is_line, w.count) for w in view.crosswalks] == [("zebra", False, 3), ("kerb", True, 3)]
    frame_view = analytics.view().movements  # what the annotated video draws
    assert frame_view is not None and [w.count for w in frame_view.crosswalks] == [3, 3]


def test_crosswalks_follow_a_change_of_the_sources_resolution():
    """The source doubles its resolution: two pedestrians walking across where the crosswalks now are
    count, one on their old pixels does not, nor one lost a quarter of the way across the doubled crosswalk
    (half its new length is the walk that counts), and the overlay draws them at their new place."""
    crosswalks = [
        {"name": "zebra", "polygon": [list(p) for p in ZEBRA]},
        {"name": "kerb", "line": [[200, 100], [200, 140]]},
    ]
    analytics = Analytics.for_run(load_config(None, {"movements": {"crosswalks": crosswalks}}))
    analytics.rescale(2.0, 2.0)
    now = [(280 + 20 * i, 240) for i in range(13)]
    walks = [(1, now), (2, [(140 + 10 * i, 120) for i in range(13)]), (3, now), (4, now[:5])]  # 4: 60 px of 200
    frame_index = 0
    for track_id, points in walks:
        for point in points + [None] * 40:
            detections = frame_of() if point is None else frame_of((track_id, *point, "person"))
            analytics.update(detections, frame_index, frame_index / FPS)
            frame_index += 1
    assert analytics.row() == {"ped_zebra": 2, "ped_kerb_in": 0, "ped_kerb_out": 2}
    view = analytics.movements_view()
    assert view is not None
    assert [w.points.tolist() for w in view.crosswalks] == [
        [[300, 220], [500, 220], [500, 260], [300, 260]],
        [[400, 200], [400, 280]],
    ]
