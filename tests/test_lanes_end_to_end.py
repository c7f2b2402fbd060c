"""Lanes on a line, through the real CLI and model: each crossing's lane against the hand count.

The lane dividers and the lane of every crossing come from tests/data/street_topdown_ground_truth.yaml
(established by watching the clip and locating the painted dividers, see its ``method``), not from
the pipeline's output.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CONFIGS, GROUND_TRUTH, run_vpipe

MATCH_FRAMES = 3
"""A crossing and a hand-counted one match within this many frames: the hand count dates a crossing by
the car's centre passing the line, the pipeline by its box's bottom centre being 6 px beyond it (1-2
frames later at these speeds), and a box's centre can differ from the car's by a few pixels."""


@pytest.fixture(scope="module")
def truth() -> dict[str, Any]:
    return yaml.safe_load((GROUND_TRUTH / "street_topdown_ground_truth.yaml").read_text())["lines"]


@pytest.fixture(scope="module")
def lanes_run(tmp_path_factory: pytest.TempPathFactory, street: Path, truth: dict[str, Any]) -> Path:
    config = yaml.safe_load((CONFIGS / "street.yaml").read_text())
    for line in config["lines"]:
        line["lanes"] = truth[line["name"]]["lanes"]
    folder = tmp_path_factory.mktemp("lanes")
    (folder / "lanes.yaml").write_text(yaml.safe_dump(config))
    result = run_vpipe(
        "run", street, "--config", folder / "lanes.yaml", "--output", folder / "out", "--no-video", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    return folder / "out"


def matched(events: list[dict[str, Any]], crossings: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """One-to-one pairs (event, hand-counted crossing) of the same direction, nearest frames first."""
    pairs = sorted(
        (abs(event["frame_index"] - crossing["frame"]), i, j)
        for i, event in enumerate(events)
        for j, crossing in enumerate(crossings)
        if event["direction"] == crossing["direction"] and abs(event["frame_index"] - crossing["frame"]) <= MATCH_FRAMES
    )
    used_events: set[int] = set()
    used_crossings: set[int] = set()
    result = []
    for _, i, j in pairs:
        if i not in used_events and j not in used_crossings:
            used_events.add(i)
            used_crossings.add(j)
            result.append((events[i], crossings[j]))
    return result


def test_each_crossing_is_in_the_lane_it_was_seen_in(lanes_run: Path, truth: dict[str, Any]):
    events = [json.loads(line) for line in (lanes_run / "events.jsonl").read_text().splitlines()]
    for name, line in truth.items():
        crossings = line["crossings"] + line["ambiguous"]  # the ambiguous ones do happen, near the end
        pairs = matched([e for e in events if e.get("line") == name], crossings)
        wrong = [(e["frame_index"], e["lane"], c["lane"]) for e, c in pairs if e["lane"] != c["lane"]]
        assert not wrong, f"{name}: (frame, lane, hand-counted lane) {wrong}"
        per_lane = Counter(c["lane"] for _, c in pairs)
        assert all(per_lane[lane["name"]] >= 3 for lane in line["lanes"]), f"{name}: too few matched {per_lane}"


def test_lane_totals_match_the_hand_count_within_one_vehicle(lanes_run: Path, truth: dict[str, Any]):
    summary = json.loads((lanes_run / "summary.json").read_text())
    events = [json.loads(line) for line in (lanes_run / "events.jsonl").read_text().splitlines()]
    for name, line in truth.items():
        lanes = summary["lines"][name]["lanes"]
        assert set(lanes) == {lane["name"] for lane in line["lanes"]}
        hand = Counter(c["lane"] for c in line["crossings"])
        for lane in lanes:
            assert lanes[lane]["in"] == sum(1 for e in events if e.get("line") == name and e["lane"] == lane)
            assert abs(lanes[lane]["in"] - hand[lane]) <= 1, f"{name} {lane}: {lanes[lane]['in']} vs {hand[lane]}"
            assert lanes[lane]["out"] == 0
