"""Movement rules for real intersections on synthetic tracks (exact expectations): gate lines as
approaches, destinations and origins inferred from a track's path, and U-turns that need evidence.

The crossing is the one of ``tests/test_movements.py``: 400x400 px, four approaches around an empty
centre at (200, 200), each given as a polygon or as a gate line across its inner edge, drawn with the
intersection on its right (clockwise on the image). Counters are built from a config, as a run does.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from pipeline.analytics import Analytics
from pipeline.analytics.movements import MovementCounter
from pipeline.config import load_config
from pipeline.errors import ConfigError
from tests.conftest import SAMPLES, run_vpipe
from tests.test_faults import one_line_error
from tests.test_lines import frame_of
from tests.test_movements import APPROACHES, CENTRES

GATES = {
    "N": [(150, 100), (250, 100)],
    "E": [(300, 150), (300, 250)],
    "S": [(250, 300), (150, 300)],
    "W": [(100, 250), (100, 150)],
}
BEYOND_GATE = {
    "N": lambda x, y: 100 - y,
    "E": lambda x, y: x - 300,
    "S": lambda x, y: y - 300,
    "W": lambda x, y: 100 - x,
}
"""How far a point lies beyond each gate, away from the intersection (negative: on its inner side)."""
MIN_CROSSING_PX = 6.0
"""The default ``movements.min_crossing_distance``."""


def counter_for(kind: str) -> MovementCounter:
    """The crossing's movement counter from a config with polygon or gate approaches (tracker defaults:
    a track is forgotten 2 s after its last sighting)."""
    geometry = APPROACHES if kind == "polygon" else GATES
    config = load_config(None, {"movements": {"approaches": [{"name": n, kind: p} for n, p in geometry.items()]}})
    counter = Analytics.for_run(config).movements
    assert counter is not None
    return counter


def route(*stops: tuple[float, float], step_px: float) -> list[tuple[float, float]]:
    """Anchor positions from stop to stop in straight legs of about ``step_px``, the first stop included."""
    points = [stops[0]]
    for x1, y1 in stops[1:]:
        x0, y0 = points[-1]
        steps = max(1, round(math.dist((x0, y0), (x1, y1)) / step_px))
        points += [(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps) for i in range(1, steps + 1)]
    return points


def drive(counter: MovementCounter, positions: list[tuple[float, float]], fps: float = 10, track_id: int = 1) -> list:
    """Feed one car frame by frame, then empty frames until it is forgotten; every event."""
    events = []
    frames = [frame_of((track_id, x, y, "car")) for x, y in positions]
    frames += [frame_of()] * math.ceil((counter.forget_after_s + 0.5) * fps)
    for frame_index, detections in enumerate(frames):
        events += counter.update(detections, frame_index, frame_index / fps)
    assert counter.tracks_held == 0
    return events


def summary_of(events: list) -> list[tuple[str, int, int, bool]]:
    return [(e.movement, e.origin_frame, e.frame_index, e.inferred) for e in events]


# --- gates -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", list(GATES))
@pytest.mark.parametrize("destination", list(GATES))
def test_gate_a_inbound_then_gate_b_outbound_is_a_movement(origin: str, destination: str):
    counter = counter_for("gate")
    # From outside gate A (its approach's centre) through the centre and out past gate B; 7.5 px steps.
    positions = route(CENTRES[origin], CENTRES["C"], CENTRES[destination], step_px=7.5)
    events = drive(counter, positions)
    centre = positions.index(CENTRES["C"])
    # Each crossing counts on the first frame its anchor is min_crossing_distance beyond the gate.
    entered = next(i for i, p in enumerate(positions) if -BEYOND_GATE[origin](*p) >= MIN_CROSSING_PX)
    left = next(i for i, p in enumerate(positions) if i > centre and BEYOND_GATE[destination](*p) >= MIN_CROSSING_PX)
    assert summary_of(events) == [(f"{origin}->{destination}", entered, left, False)]


def test_leaving_by_a_gate_never_entered_is_no_movement_from_it():
    counter = counter_for("gate")
    # First seen standing in the box west of the centre (no heading to infer an origin from), then
    # drives out across the W gate (outbound) and on.
    positions = [(160.0, 200.0)] * 10 + route((160, 200), (40, 200), step_px=10)[1:]
    assert drive(counter, positions) == []
    assert counter.summary()["stayed_in_origin"] == {}


# --- destinations and origins from a track's path ----------------------------------------------------


@pytest.mark.parametrize("kind", ["polygon", "gate"])
@pytest.mark.parametrize(
    ("last_seen", "destination"),
    [((240, 200), "E"), ((200, 160), "N"), ((200, 240), "S")],
    ids=["through", "left", "right"],
)
def test_a_track_lost_in_the_box_heading_to_an_approach_takes_it_as_destination(
    kind: str, last_seen: tuple[float, float], destination: str
):
    counter = counter_for(kind)
    # From W to the centre, then straight on, or turned north or south: lost 40 px past the centre.
    positions = route(CENTRES["W"], CENTRES["C"], last_seen, step_px=10)
    events = drive(counter, positions)
    origin_frame = 0 if kind == "polygon" else 6  # past the W gate (x=100) by 6 px or more: x=110 on frame 6
    assert summary_of(events) == [(f"W->{destination}", origin_frame, len(positions) - 1, True)]
    assert events[0].to_record()["inferred"] is True and events[0].destination == destination
    assert counter.summary()["inferred"] == {f"W->{destination}": 1}


@pytest.mark.parametrize("kind", ["polygon", "gate"])
def test_a_track_lost_heading_between_approaches_has_no_destination(kind: str):
    counter = counter_for(kind)
    # Lost heading north-east from (240, 160): its path passes (300, 100), the corner between N and E.
    positions = route(CENTRES["W"], CENTRES["C"], (240, 160), step_px=10)
    events = drive(counter, positions)
    assert [(e.movement, e.destination, e.inferred) for e in events] == [("W->?", None, False)]
    assert counter.summary()["inferred"] == {}


@pytest.mark.parametrize("kind", ["polygon", "gate"])
@pytest.mark.parametrize(
    ("first_seen", "origin", "destination"),
    [((160, 200), "W", "E"), ((200, 250), "S", "N"), ((240, 200), "E", "N")],
    ids=["W-E", "S-N", "E-N"],
)
def test_a_track_first_seen_in_the_box_takes_its_origin_from_its_path_backwards(
    kind: str, first_seen: tuple[float, float], origin: str, destination: str
):
    counter = counter_for(kind)
    # Straight to the destination (E-N: west, then a right turn north at the centre); steps of about
    # 7.5 px put no anchor on a box's edge.
    stops = [first_seen, CENTRES["C"], CENTRES[destination]] if origin == "E" else [first_seen, CENTRES[destination]]
    positions = route(*stops, step_px=7.5)
    events = drive(counter, positions)
    if kind == "polygon":  # the frame the anchor is first in the destination's box
        (x0, y0), (x1, y1) = APPROACHES[destination][0], APPROACHES[destination][2]
        arrived = next(i for i, (x, y) in enumerate(positions) if x0 < x < x1 and y0 < y < y1)
    else:
        arrived = next(i for i, p in enumerate(positions) if BEYOND_GATE[destination](*p) >= MIN_CROSSING_PX)
    assert summary_of(events) == [(f"{origin}->{destination}", 0, arrived, True)]


# --- U-turns -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["polygon", "gate"])
@pytest.mark.parametrize("fps", [5, 30])
def test_queue_jitter_around_the_approach_edge_is_never_a_u_turn(kind: str, fps: int):
    counter = counter_for(kind)
    # A queued car's anchor swings 10, 20 then 30 px either side of W's inner edge (x=100), each swing
    # 2 s long, so it spends a second at a time outside the approach; then it drives off east.
    jitter = [
        (100 - amplitude * math.cos(2 * math.pi * i / (2 * fps)), 200.0)
        for amplitude in (10, 20, 30, 30, 20, 10)
        for i in range(2 * fps)
    ]
    positions = jitter + route(jitter[-1], CENTRES["E"], step_px=150 / fps)[1:]
    events = drive(counter, positions, fps=fps)
    assert [e.movement for e in events] == ["W->E"]


@pytest.mark.parametrize("kind", ["polygon", "gate"])
@pytest.mark.parametrize("fps", [5, 30])
def test_a_car_that_drives_out_into_the_box_and_back_is_a_u_turn(kind: str, fps: int):
    counter = counter_for(kind)
    # Out from W to 20 px short of the centre and back, 150 px/s.
    positions = route(CENTRES["W"], (180, 200), CENTRES["W"], step_px=150 / fps)
    events = drive(counter, positions, fps=fps)
    assert [(e.movement, e.inferred) for e in events] == [("W->W", False)]


# --- config ------------------------------------------------------------------------------------------


def approaches_with(**changes: dict) -> list[dict]:
    approaches = [{"name": name, "gate": gate} for name, gate in GATES.items()]
    for index, change in changes.items():
        approaches[int(index[1:])] = change
    return approaches


@pytest.mark.parametrize(
    ("approaches", "message"),
    [
        (approaches_with(a1={"name": "E"}), "movements.approaches[1]: give a polygon, a gate or both"),
        (
            approaches_with(a1={"name": "E", "gate": [[300, 150], [300, 250], [300, 300]]}),
            "movements.approaches[1].gate: expected a list of 2 points",
        ),
        (
            approaches_with(a1={"name": "E", "gate": [[300, 150], [300, 150]]}),
            "movements.approaches[1]: gate: both points",
        ),
        (
            approaches_with(a2={"name": "S", "gate": [[150, 300], [250, 300]]}),
            "movements: approaches[2].gate (S): every other approach lies on its left",
        ),
    ],
    ids=["neither", "three-points", "one-point", "drawn-the-wrong-way"],
)
def test_a_bad_gate_names_the_key(approaches: list[dict], message: str):
    with pytest.raises(ConfigError, match=r"^" + re.escape(message)):
        load_config(None, {"movements": {"approaches": approaches}})


def test_a_polygon_and_a_gate_together_are_one_approach():
    both = [{"name": n, "polygon": APPROACHES[n], "gate": GATES[n]} for n in GATES]
    config = load_config(None, {"movements": {"approaches": both}})
    counter = Analytics.for_run(config).movements
    assert counter is not None
    assert [e.movement for e in drive(counter, route(CENTRES["S"], CENTRES["C"], CENTRES["W"], step_px=10))] == ["S->W"]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"name": "S", "gate": [[250, 300], [250, 300]]}, "movements.approaches[2]: gate: both points"),
        ({"name": "S", "gate": [[150, 300], [250, 300]]}, "movements: approaches[2].gate (S)"),
        ({"name": "S", "gate": [[2000, 300], [150, 300]]}, "movements.approaches[2] (S): point (2000, 300) is outside"),
    ],
    ids=["one-point", "drawn-the-wrong-way", "outside-the-frame"],
)
def test_a_bad_gate_in_a_config_file_is_one_line_naming_file_and_key(tmp_path: Path, change: dict, key: str):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"movements": {"approaches": approaches_with(a2=change)}}))
    result = run_vpipe("run", SAMPLES / "pklot_pucpr", "--config", config, "--output", tmp_path / "out", "--no-video")
    one_line_error(result, f"{config}: {key}")
