"""Crossing-by-crossing evaluation: exact cases for the matcher and the eval_counts.py script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline.evaluation import CountedCrossing, Tolerance, TruthCrossing, load_counted, match_crossings
from tests.conftest import REPO

WINDOW = Tolerance(early_frames=0, late_frames=2)


def test_a_miss_and_an_extra_do_not_cancel():
    truth = [TruthCrossing("main", "in", 10), TruthCrossing("main", "in", 50)]
    counted = [CountedCrossing("main", "in", 11), CountedCrossing("main", "in", 90)]
    result = match_crossings(truth, counted, WINDOW)
    (row,) = result.rows()
    assert (row.truth, row.counted, row.matched, row.missed, row.extra) == (2, 2, 1, 1, 1)
    assert not result.exact
    assert [t.frame for t in result.missed] == [50] and [c.frame for c in result.extra] == [90]


def test_each_truth_crossing_takes_at_most_one_count():
    truth = [TruthCrossing("main", "in", 10)]
    result = match_crossings(truth, [CountedCrossing("main", "in", 10), CountedCrossing("main", "in", 11)], WINDOW)
    assert len(result.matched) == 1 and len(result.extra) == 1


def test_pairing_maximises_matches_not_nearest_first():
    # Nearest first would pair 12 with 12 and leave 13 (too late for 10) unmatched.
    truth = [TruthCrossing("main", "in", 10), TruthCrossing("main", "in", 12)]
    counted = [CountedCrossing("main", "in", 12), CountedCrossing("main", "in", 13)]
    result = match_crossings(truth, counted, WINDOW)
    assert result.exact
    assert sorted((t.frame, c.frame) for t, c in result.matched) == [(10, 12), (12, 13)]


def test_line_and_direction_must_agree_and_the_window_is_one_sided():
    truth = [TruthCrossing("a", "in", 10), TruthCrossing("a", "in", 30)]
    counted = [CountedCrossing("a", "out", 10), CountedCrossing("b", "in", 10), CountedCrossing("a", "in", 29)]
    result = match_crossings(truth, counted, WINDOW)
    assert not result.matched and len(result.missed) == 2 and len(result.extra) == 3


def test_a_count_of_an_ambiguous_crossing_is_neither_matched_nor_extra():
    truth = [TruthCrossing("main", "in", 10), TruthCrossing("main", "in", 478, ambiguous=True)]
    result = match_crossings(truth, [CountedCrossing("main", "in", 10), CountedCrossing("main", "in", 479)], WINDOW)
    (row,) = result.rows()
    assert (row.truth, row.matched, row.missed, row.extra, row.ambiguous_counted) == (1, 1, 0, 0, 1)


def test_window_grows_with_the_frame_step():
    assert Tolerance.for_run(30.0, 1) == Tolerance(early_frames=6, late_frames=6)
    assert Tolerance.for_run(30.0, 6) == Tolerance(early_frames=6, late_frames=16)


def eval_counts(*args: str | Path) -> subprocess.CompletedProcess[str]:
    script = REPO / "scripts" / "eval_counts.py"
    return subprocess.run([sys.executable, script, *map(str, args)], capture_output=True, text=True, cwd=REPO)


def test_eval_counts_script(tmp_path: Path):
    truth = tmp_path / "truth.yaml"
    truth.write_text(
        "lines:\n  main:\n    crossings:\n      - {frame: 30, direction: in}\n      - {frame: 60, direction: in}\n"
    )
    events = tmp_path / "events.jsonl"
    records = [
        {"event": "line_crossing", "frame_index": f, "line": "main", "direction": "in", "track_id": 1} for f in (10, 20)
    ]
    events.write_text("".join(json.dumps(r) + "\n" for r in records))
    exact = eval_counts(truth, tmp_path, "--frame-step", "3")  # every 3rd frame: 10 and 20 are frames 30 and 60
    assert exact.returncode == 0, exact.stderr
    assert exact.stdout.splitlines()[1].split() == ["main", "in", "2", "2", "2", "0", "0", "0"]
    off = eval_counts(truth, events, "--list")  # frames 10 and 20: both early
    assert off.returncode == 1
    assert off.stdout.splitlines()[1].split() == ["main", "in", "2", "2", "0", "2", "2", "0"]
    assert "missed: main in frame 30" in off.stdout and "extra:  main in frame 10 track 1" in off.stdout
    missing = eval_counts(truth, tmp_path / "nowhere.jsonl")
    assert missing.returncode == 2 and missing.stderr.startswith("error:") and len(missing.stderr.splitlines()) == 1


def test_counts_get_their_crossing_time_when_the_truths_rate_is_given(tmp_path: Path):
    # A run on every 3rd frame of a 30 fps clip: event frame 40 is clip frame 120 (4.0 s), and the
    # anchor was on the line 0.2 s earlier, at clip frame 114; a record without crossed_s keeps its frame.
    events = tmp_path / "events.jsonl"
    records = [
        {
            "event": "line_crossing",
            "frame_index": 40,
            "timestamp_s": 4.0,
            "line": "main",
            "direction": "in",
            "track_id": 3,
            "class_name": "car",
            "crossed_s": 3.8,
        },
        {
            "event": "line_crossing",
            "frame_index": 50,
            "timestamp_s": 5.0,
            "line": "main",
            "direction": "out",
            "track_id": 4,
            "class_name": "car",
        },
    ]
    events.write_text("".join(json.dumps(record) + "\n" for record in records))
    assert [(c.frame, c.crossed_frame) for c in load_counted(events, frame_step=3)] == [(120, None), (150, None)]
    counted = load_counted(events, frame_step=3, truth_fps=30.0)
    assert [(c.frame, c.crossed_frame) for c in counted] == [(114 + 6, 114), (150, None)]


def test_a_count_with_a_crossing_time_matches_truth_anywhere_in_its_span_and_the_margin_around_it():
    window = Tolerance(early_frames=2, late_frames=2)
    count = CountedCrossing("main", "in", 120, crossed_frame=114)
    for truth_frame, matched in [(111, False), (112, True), (117, True), (122, True), (123, False)]:
        result = match_crossings([TruthCrossing("main", "in", truth_frame)], [count], window)
        assert (len(result.matched) == 1) == matched, truth_frame
