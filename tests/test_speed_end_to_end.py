"""Speed through the real CLI and model: each vehicle's ``speed_kmh`` against its measured speed.

The calibration and the speeds come from the ``speed`` section of tests/data/highway_ground_truth.yaml:
the road markings give the scale, and each vehicle's speed was measured from its position on that
scale frame by frame, without a detection model (see its ``method``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CONFIGS, GROUND_TRUTH, run_vpipe

TOLERANCE = 0.10
"""Relative error allowed per vehicle: the measured speeds are good to about 3% (two fits over different
stretches of road differ by up to that), and the pipeline tracks the bottom of each box, the front bumper
0.3-0.5 m above the road, which a camera some 10 m up sees moving 3-5% faster than the road under it,
plus box jitter over a 1 s fit at far rows where a pixel is 0.2 m."""

MATCH_FRAMES = 3
"""An event matches a hand-counted crossing within this many frames (as in the lanes test)."""


@pytest.fixture(scope="module")
def truth() -> dict[str, Any]:
    return yaml.safe_load((GROUND_TRUTH / "highway_ground_truth.yaml").read_text())["speed"]


@pytest.fixture(scope="module")
def speed_run(tmp_path_factory: pytest.TempPathFactory, highway: Path, truth: dict[str, Any]) -> Path:
    config = yaml.safe_load((CONFIGS / "traffic.yaml").read_text())
    config["speed"] = truth["calibration"]
    folder = tmp_path_factory.mktemp("speed")
    (folder / "speed.yaml").write_text(yaml.safe_dump(config))
    result = run_vpipe(
        "run", highway, "--config", folder / "speed.yaml", "--output", folder / "out", "--no-video", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    return folder / "out"


def matched(events: list[dict[str, Any]], vehicles: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """One-to-one pairs (event, vehicle), nearest frames first. Vehicles that cross within a frame of
    each other (side by side) cannot be told apart by frame: among equally near pairs, the closer
    speeds pair first, i.e. such vehicles are compared in order of speed."""
    pairs = sorted(
        (abs(e["frame_index"] - v["frame"]), abs((e["speed_kmh"] or 0) - v["speed_kmh"]), i, j)
        for i, e in enumerate(events)
        for j, v in enumerate(vehicles)
        if abs(e["frame_index"] - v["frame"]) <= MATCH_FRAMES
    )
    used_events: set[int] = set()
    used_vehicles: set[int] = set()
    result = []
    for *_, i, j in pairs:
        if i not in used_events and j not in used_vehicles:
            used_events.add(i)
            used_vehicles.add(j)
            result.append((events[i], vehicles[j]))
    return result


def test_each_vehicle_s_speed_is_its_speed_measured_on_the_road_markings(speed_run: Path, truth: dict[str, Any]):
    events = [json.loads(line) for line in (speed_run / "events.jsonl").read_text().splitlines()]
    crossings = [e for e in events if e["event"] == "line_crossing"]
    pairs = matched(crossings, truth["vehicles"])
    assert len(pairs) >= len(truth["vehicles"]) - 1, "more than one vehicle missed (see the counting tests)"
    errors = {v["frame"]: (e["speed_kmh"], v["speed_kmh"]) for e, v in pairs}
    wrong = {
        frame: speeds
        for frame, speeds in errors.items()
        if speeds[0] is None or abs(speeds[0] - speeds[1]) > TOLERANCE * speeds[1]
    }
    assert not wrong, f"(pipeline, measured) km/h by crossing frame: {wrong}"


def test_summary_mean_speed_is_the_mean_of_the_events(speed_run: Path):
    events = [json.loads(line) for line in (speed_run / "events.jsonl").read_text().splitlines()]
    speeds = [e["speed_kmh"] for e in events if e["event"] == "line_crossing" and e["speed_kmh"] is not None]
    summary = json.loads((speed_run / "summary.json").read_text())
    assert summary["lines"]["main"]["mean_speed_kmh"]["in"] == pytest.approx(sum(speeds) / len(speeds), abs=0.01)
