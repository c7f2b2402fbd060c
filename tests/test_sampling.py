"""``--sample-every S``: one frame every S seconds of source time goes through the model, the rest
are skipped before it. Checked on a file against the hand-counted crossings (crossing by crossing)
and on a live MJPEG camera, whose frames are timed by the wall clock."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

from pipeline.evaluation import Tolerance, format_table, load_counted, load_truth, match_crossings
from tests.conftest import CONFIGS, GROUND_TRUTH, SAMPLES, run_vpipe
from tests.servers.mjpeg import MjpegServer

HIGHWAY_FPS = 30000 / 1001


def _timestamps(run_dir: Path) -> list[float]:
    with (run_dir / "counts.csv").open() as file:
        return [float(row["timestamp_s"]) for row in csv.DictReader(file)]


def test_a_file_sampled_every_0_2_s_keeps_one_frame_per_interval_and_counts_every_crossing(tmp_path: Path):
    result = run_vpipe(
        "run", SAMPLES / "highway.mp4", "--config", CONFIGS / "traffic.yaml", "--sample-every", "0.2",
        "--no-video", "--quiet", "--output", tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    times = _timestamps(tmp_path)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # At least 0.2 s apart, and no frame skipped beyond that: the next source frame is kept.
    assert min(gaps) >= 0.2 - 1e-3 and max(gaps) <= 0.2 + 1 / HIGHWAY_FPS + 1e-3, (min(gaps), max(gaps))
    assert len(times) == 56  # 335 frames at 29.97 fps, every 6th (0.2002 s): frames 0, 6, ..., 330
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == 56 and summary["tracker"]["fps"] == 5.0  # the tracker works at the rate it sees
    step = 6  # source frames between kept frames: the crossing time is interpolated over 6 frames
    matched = match_crossings(
        load_truth(GROUND_TRUTH / "highway_ground_truth.yaml"),
        load_counted(tmp_path / "events.jsonl", truth_fps=HIGHWAY_FPS),
        Tolerance.for_crossing_times(HIGHWAY_FPS, step),
    )
    report = format_table(matched)
    for row in matched.rows():  # the low-frame-rate bar: within one vehicle, at most one missed and one extra
        assert abs(row.counted - row.ambiguous_counted - row.truth) <= 1, report
        assert row.missed <= 1 and row.extra <= 1, report


def test_a_live_camera_sampled_every_half_second_is_processed_twice_a_second(tmp_path: Path, street: Path):
    camera = MjpegServer(street, fps=12).start()  # no stream clock: frames timed as read
    try:
        result = run_vpipe("run", camera.url, "--sample-every", "0.5", "--max-frames", "6", "--imgsz", "320",
                           "--no-video", "--quiet", "--output", tmp_path, timeout=300)  # fmt: skip
    finally:
        camera.stop()
    assert result.returncode == 0, result.stderr
    times = _timestamps(tmp_path)
    assert len(times) == 6
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Half a second apart, give or take the camera's 1/12 s between frames and delivery jitter.
    assert all(0.5 - 1e-3 <= gap <= 0.5 + 2 / 12 + 0.1 for gap in gaps), gaps
