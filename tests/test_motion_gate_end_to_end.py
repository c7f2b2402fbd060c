"""``--motion-gate`` with the real CLI and model: it changes no count, and on a still scene it keeps
most frames from the detector.

highway.mp4 moves all the time, but 65 of its 335 frames repeat the one before: a repeat differs
from its predecessor by at most 0.5 grey levels on average, every other frame by at least 0.8. The
gate may hold those, and no other frame, and the crossings must be those of the run without it,
frame by frame, and match the hand count as well.

The still clip is two real snapshots of the PUCPR lot, 4 s each at 5 fps, through H.264: eight
seconds in which the picture changes once. Its bays must end each snapshot's stretch as they do
without the gate, but for a bay the model changes its mind about on the unchanging picture without
the gate (seeing each frame's compression anew, it took to A08, at the edge of its sight, a few frames
before the picture changed; the gated run holds what it saw).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from pipeline.evaluation import Tolerance, load_counted, load_truth, match_crossings, still_clip
from tests.conftest import CONFIGS, GROUND_TRUTH, SAMPLES, run_vpipe

REPEAT_MAX_DIFFERENCE = 0.65
"""Mean absolute difference (grey levels) below which a frame of highway.mp4 repeats the one before."""
LOT_FPS, STRETCH_S = 5, 4


def run(source: Path, config: Path, out: Path, *flags: str) -> dict[str, Any]:
    result = run_vpipe("run", source, "--config", config, "--output", out, "--no-video", "--quiet", *flags)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "summary.json").read_text())


def events_of(out: Path, kind: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    return [r for r in records if r.get("event", "").startswith(kind)]


def repeated_frames(path: Path) -> int:
    capture, previous, repeats = cv2.VideoCapture(str(path)), None, 0
    while True:
        ok, image = capture.read()
        if not ok:
            return repeats
        if previous is not None:
            repeats += float(np.abs(image.astype(int) - previous.astype(int)).mean()) < REPEAT_MAX_DIFFERENCE
        previous = image


@pytest.fixture(scope="module")
def highway_runs(tmp_path_factory: pytest.TempPathFactory, highway: Path) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("highway")
    runs = {"gated": out / "gated", "plain": out / "plain"}
    run(highway, CONFIGS / "traffic.yaml", runs["gated"], "--motion-gate")
    run(highway, CONFIGS / "traffic.yaml", runs["plain"])
    return runs


def test_on_a_moving_road_the_gate_holds_only_repeated_frames(highway_runs: dict[str, Path], highway: Path):
    summary = json.loads((highway_runs["gated"] / "summary.json").read_text())
    gate = summary["motion_gate"]
    assert gate["frames_detected"] + gate["frames_motion_skipped"] == summary["frames"] == 335
    assert 0 < gate["frames_motion_skipped"] <= repeated_frames(highway) == 65
    assert "motion_gate" not in json.loads((highway_runs["plain"] / "summary.json").read_text())


def test_the_crossings_are_those_without_the_gate_and_match_the_hand_count(highway_runs: dict[str, Path]):
    def crossings(out: Path) -> list[tuple[Any, ...]]:
        return [(e["line"], e["direction"], e["frame_index"], e["class_name"]) for e in events_of(out, "line_crossing")]

    assert crossings(highway_runs["gated"]) == crossings(highway_runs["plain"])
    truth = load_truth(GROUND_TRUTH / "highway_ground_truth.yaml")
    matched = match_crossings(truth, load_counted(highway_runs["gated"] / "events.jsonl"), Tolerance.for_run(29.97, 1))
    assert not matched.missed and not matched.extra, (matched.missed, matched.extra)


def test_a_still_lot_is_mostly_not_detected_and_its_bays_change_as_without_the_gate(tmp_path: Path):
    lot = SAMPLES / "pklot_pucpr"
    clip = tmp_path / "still_lot.mp4"
    still_clip([lot / "2012-09-12_10_26_57.jpg", lot / "2012-09-28_08_01_02.jpg"], clip, LOT_FPS, STRETCH_S)
    config = tmp_path / "parking.yaml"  # the parking demo with the default 2 s debounce
    config.write_text(
        f"model:\n  task: detect\n  classes: [car, motorcycle, bus, truck]\n"
        f"parking:\n  slots_file: {CONFIGS / 'slots' / 'pklot_pucpr.yaml'}\n"
    )
    gated = run(clip, config, tmp_path / "gated", "--motion-gate")
    plain = run(clip, config, tmp_path / "plain")
    frames, still = gated["frames"], gated["frames"] - 2  # all but each snapshot's first frame
    assert frames == plain["frames"] == 2 * STRETCH_S * LOT_FPS
    gate = gated["motion_gate"]
    assert gate["frames_detected"] + gate["frames_motion_skipped"] == frames
    assert gate["frames_detected"] >= 2 * STRETCH_S  # at least once a second
    assert gate["frames_motion_skipped"] >= 0.75 * still
    firsts, ends = {0, STRETCH_S * LOT_FPS}, [STRETCH_S * LOT_FPS - 1, frames - 1]
    changes = {name: events_of(tmp_path / name, "slot_") for name in ("gated", "plain")}
    assert {e["frame_index"] for e in changes["gated"]} == firsts  # dated to the two snapshots' first frames
    unsure = {e["slot"] for e in changes["plain"] if e["frame_index"] not in firsts}  # changed on a still picture
    assert len(unsure) <= 2, unsure
    gated_bays, plain_bays = bays_at(changes["gated"], ends), bays_at(changes["plain"], ends)
    assert gated_bays[0] != gated_bays[1]  # the second snapshot changed bays
    for gated_state, plain_state in zip(gated_bays, plain_bays, strict=True):
        assert gated_state ^ plain_state <= unsure, (gated_state ^ plain_state, unsure)


def bays_at(changes: list[dict[str, Any]], frames: list[int]) -> list[set[str]]:
    """The occupied bays after each of ``frames``, replayed from slot_occupied / slot_free events."""
    states, occupied = [], set()
    pending = sorted(changes, key=lambda e: e["frame_index"])
    for frame in frames:
        while pending and pending[0]["frame_index"] <= frame:
            change = pending.pop(0)
            (occupied.add if change["event"] == "slot_occupied" else occupied.discard)(change["slot"])
        states.append(set(occupied))
    return states


def test_a_batch_slice_holds_repeated_frames_and_counts_as_without_the_gate(tmp_path: Path, highway: Path):
    from fractions import Fraction

    from pipeline.batch.slice_runner import run_slice
    from pipeline.batch.slicing import plan_slices, probe_timestamps
    from pipeline.config import load_config

    pts, time_base = probe_timestamps(highway)
    spec = plan_slices(pts, time_base, Fraction(4), Fraction(1))[1]  # a warm-up, then frames counted
    summaries = {}
    for name, gated in (("gated", True), ("plain", False)):
        overrides = {"source": {"path": str(highway)}, "output": {"dir": str(tmp_path / name)}}
        config = load_config(CONFIGS / "traffic.yaml", {**overrides, "model": {"motion_gate": gated}})
        summaries[name] = run_slice(config, spec).to_json()
    gate = summaries["gated"]["motion_gate"]
    assert gate["frames_detected"] + gate["frames_motion_skipped"] == summaries["gated"]["frames"]
    assert gate["frames_motion_skipped"] > 0
    assert summaries["gated"]["lines"] == summaries["plain"]["lines"]
    crossings = {
        name: [(e["line"], e["direction"], e["frame_index"]) for e in events_of(tmp_path / name, "line_crossing")]
        for name in summaries
    }
    assert crossings["gated"] == crossings["plain"] and crossings["plain"]
