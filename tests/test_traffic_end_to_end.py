"""Turning movements with the real CLI and model on the street clip, matched event by event against
tests/data/street_topdown_ground_truth.yaml (each car's frame crossing x=320, found by hand).

configs/street_movements.yaml puts the West box at x 200..280 and the East box at x 360..440, full
height. Every car moves at least 5 px per frame (the slowest, the black sedan crossing at frame 318,
measured by hand over frames 310..318), so a car crossing x=320 at frame f is inside both boxes
within 24 frames of f: all ground-truth crossings (frames 32..437) are complete passes through both
boxes inside the clip, except the two listed as ambiguous (frames 478 and 479), which are excluded.
Eastbound cars are therefore ``West->East`` and westbound ones ``East->West``. A reported movement
matches a car when the car's crossing frame lies between the movement's first frame in its origin
and the frame it reached its destination (one car per movement).

The run has 5 s intervals: the clip has no ``creation_time``, so bins start at its first frame, and a
hand-counted crossing at frame f (23.976 fps) belongs to bin floor(f / 23.976 / 5).
"""

from __future__ import annotations

import csv
import json
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pipeline.config import load_config
from pipeline.io.live.view import LiveView
from pipeline.io.publish.publisher import Publisher
from tests.conftest import CONFIGS, GROUND_TRUTH, run_vpipe

MOVEMENT_OF_LINE = {"eastbound": ("West", "East"), "westbound": ("East", "West")}


@pytest.fixture(scope="module")
def movements_run(tmp_path_factory: pytest.TempPathFactory, street: Path) -> Path:
    out = tmp_path_factory.mktemp("movements")
    config = out / "config.yaml"  # the movements config with 5 s intervals
    settings = yaml.safe_load((CONFIGS / "street_movements.yaml").read_text())
    config.write_text(yaml.safe_dump({**settings, "output": {"interval": "5s"}}))
    result = run_vpipe("run", street, "--config", config, "--output", out, "--no-video", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    return out


def read_events(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def match(crossings: list[int], windows: list[tuple[int, int]]) -> list[int]:
    """The crossing frames paired one-to-one with a (first frame in origin, last frame) window that
    contains them, as many as possible (greedy by window end: optimal for points and intervals)."""
    free = sorted(crossings)
    matched = []
    for start, end in sorted(windows, key=lambda w: w[1]):
        hit = next((f for f in free if start <= f <= end), None)
        if hit is not None:
            free.remove(hit)
            matched.append(hit)
    return matched


def test_movements_match_the_hand_counted_crossings_event_by_event(movements_run: Path):
    truth = yaml.safe_load((GROUND_TRUTH / "street_topdown_ground_truth.yaml").read_text())["lines"]
    movements = [e for e in read_events(movements_run) if e["event"] == "movement"]
    assert not [e for e in movements if e["origin"] == e["destination"]], "no car turns back on this road"
    table = {}
    for line, (origin, destination) in MOVEMENT_OF_LINE.items():
        frames = [c["frame"] for c in truth[line]["crossings"]]
        complete = [e for e in movements if (e["origin"], e["destination"]) == (origin, destination)]
        matched = match(frames, [(e["origin_frame"], e["frame_index"]) for e in complete])
        missed = sorted(set(frames) - set(matched))
        unfinished = [e for e in movements if e["origin"] == origin and e["destination"] is None]
        # A car lost between the boxes may be reported as origin->?, but only a car that really crossed.
        assert len(match(missed, [(e["origin_frame"], e["frame_index"]) for e in unfinished])) == len(unfinished)
        table[f"{origin}->{destination}"] = {
            "truth": len(frames),
            "matched": len(matched),
            "missed": missed,
            "extra": len(complete) - len(matched),
            "unfinished": len(unfinished),
        }
    # The bar: within one vehicle per movement, misses and extras counted apart.
    assert all(len(row["missed"]) <= 1 and row["extra"] <= 1 for row in table.values()), table


def test_summary_and_counts_columns_agree_with_the_events(movements_run: Path):
    summary = json.loads((movements_run / "summary.json").read_text())["movements"]
    movements = [e for e in read_events(movements_run) if e["event"] == "movement"]
    for name, entry in summary["counts"].items():
        assert entry["total"] == sum(e["movement"] == name for e in movements)
        assert sum(entry["by_class"].values()) == entry["total"]
    header, *rows = (movements_run / "counts.csv").read_text().splitlines()
    columns = header.split(",")
    assert columns[-4:] == ["West->West", "West->East", "East->West", "East->East"]
    last = dict(zip(columns, rows[-1].split(","), strict=True))
    for name in columns[-4:]:
        assert int(last[name]) == summary["counts"][name]["total"]
    assert cv2.imread(str(movements_run / "movements.png")).shape == (360, 640, 3)  # the OD overlay on frame 0


def test_interval_counts_sum_to_the_line_totals_and_follow_the_crossing_frames(movements_run: Path):
    summary = json.loads((movements_run / "summary.json").read_text())
    truth = yaml.safe_load((GROUND_TRUTH / "street_topdown_ground_truth.yaml").read_text())["lines"]
    rows = list(csv.DictReader((movements_run / "intervals.csv").open()))
    starts = sorted({float(r["interval_start"]) for r in rows})
    assert starts == [0.0, 5.0, 10.0, 15.0]  # 480 frames at 23.976 fps: 20.02 s
    for line in ("eastbound", "westbound"):
        per_bin = {
            float(r["interval_start"]): int(r["count"])
            for r in rows
            if (r["kind"], r["name"], r["direction"], r["class_name"]) == ("line", line, "in", "all")
        }
        assert sum(per_bin.values()) == summary["lines"][line]["in_total"]
        hand = Counter(int(c["frame"] * 125 / 2997 // 5) * 5.0 for c in truth[line]["crossings"])
        for start in starts:
            assert abs(per_bin[start] - hand[start]) <= 1, f"{line} {start}: {per_bin[start]} vs {hand[start]}"
    for name, entry in summary["movements"]["counts"].items():
        counted = [r for r in rows if r["kind"] == "movement" and r["name"] == name and r["class_name"] == "all"]
        assert sum(int(r["count"]) for r in counted) == entry["total"]
    assert summary["intervals"]["interval_s"] == 5.0
    peak = summary["intervals"]["peak_hour"]["line:eastbound:in"]  # the whole 20 s clip fits in one hour
    assert peak["volume"] == summary["lines"]["eastbound"]["in_total"]


def test_prometheus_metrics_parse_and_equal_the_summary(movements_run: Path, tmp_path: Path):
    summary = json.loads((movements_run / "summary.json").read_text())
    with LiveView(port=0) as view:
        publisher = Publisher(load_config(None), "street", tmp_path, metrics=view.metrics)
        publisher.publish(read_events(movements_run))
        for row in csv.DictReader((movements_run / "counts.csv").open()):
            publisher.counts(row, float(row["timestamp_s"]))
        with urllib.request.urlopen(f"http://127.0.0.1:{view.port}/metrics", timeout=10) as response:
            text = response.read().decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.endswith("_total")
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted({"camera": "street", **labels}.items()))), 0.0)

    for line, entry in summary["lines"].items():
        for direction in ("in", "out"):
            for class_name, count in entry[direction].items():
                labels = {"line": line, "direction": direction, "class_name": class_name}
                assert value("vpipe_line_crossings_total", **labels) == count
    crossings = sum(v for (name, _), v in samples.items() if name == "vpipe_line_crossings_total")
    assert crossings == sum(e["in_total"] + e["out_total"] for e in summary["lines"].values())
    for movement, entry in summary["movements"]["counts"].items():
        for class_name, count in entry["by_class"].items():
            assert value("vpipe_movements_total", movement=movement, class_name=class_name) == count
    assert value("vpipe_frames_processed_total") == summary["frames"]
