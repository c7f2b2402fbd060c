"""Faults round 3, the run's clock: ``covered_s`` is measured (the outage rule), the peak-hour factor
needs a full hour, and a live feed's ``timestamp_s`` is the annotated video's presentation time.

The expected ``covered_s`` are worked out by hand from the frame times each test gives: the time
between consecutive frames is covered, split at bin edges, unless the gap is over
max(2 s, 4 x the median gap).
"""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from pathlib import Path

import av
import pytest
import yaml

from pipeline.analytics.events import LineCrossing
from pipeline.analytics.intervals import COLUMNS, IntervalCounter, merge_rows
from pipeline.io.outputs.sinks import csv_text
from tests.conftest import CONFIGS, run_vpipe
from tests.servers.mjpeg import MjpegServer

KEYS = [("line", "main", "in"), ("line", "main", "out")]


def covered(counter: IntervalCounter, frames_s: list[float]) -> list[tuple[str, float]]:
    """(interval_start, covered_s) of each bin, from a run with a frame at each of ``frames_s``."""
    rows = [row for t in frames_s for row in counter.update([], t)] + counter.finish()
    return [(r["interval_start"], r["covered_s"]) for r in rows if (r["direction"], r["class_name"]) == ("in", "all")]


def every(step_s: float, first_s: float, last_s: float) -> list[float]:
    """Frame times from ``first_s`` to ``last_s`` inclusive, ``step_s`` apart (computed, not summed)."""
    return [first_s + i * step_s for i in range(round((last_s - first_s) / step_s) + 1)]


# --- covered_s: the outage rule on frames at given times ---------------------------------------


def test_a_60_s_pause_is_not_covered_and_the_bins_around_it_count_what_was_seen():
    # 2 fps until 12 s, nothing until 72 s, 2 fps until 100 s; 30 s bins.
    frames = every(0.5, 0.0, 12.0) + every(0.5, 72.0, 100.0)
    assert covered(IntervalCounter(30.0, None, KEYS, lag_s=0.0), frames) == [
        ("0.0", 12.0),  # 0 .. 12, then the pause
        ("30.0", 0.0),  # inside the pause
        ("60.0", 18.0),  # 72 .. 90
        ("90.0", 10.0),  # 90 .. 100 (the last frame)
    ]


def test_snapshots_every_2_s_cover_missed_ones_up_to_four_intervals():
    # 0.5 fps; 10 -> 18 is 8 s (3 snapshots missed: 4 x 2 s, covered), 24 -> 34 is 10 s (an outage).
    frames = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 18.0, 20.0, 22.0, 24.0, 34.0, 36.0, 38.0, 40.0]
    assert covered(IntervalCounter(10.0, None, KEYS, lag_s=0.0), frames) == [
        ("0.0", 10.0),
        ("10.0", 10.0),  # 10 .. 18 .. 20
        ("20.0", 4.0),  # 20 .. 24
        ("30.0", 6.0),  # 34 .. 40
        ("40.0", 0.0),  # one frame at 40: nothing after it
    ]


def test_at_60_fps_a_gap_up_to_2_s_is_covered_and_split_at_the_bin_edge():
    # 0 .. 4 s, a 1.5 s freeze across the 5 s edge (covered: 1 s + 0.5 s), 5.5 .. 7 s,
    # a 2.5 s freeze (an outage), 9.5 .. 11 s; 5 s bins.
    frames = every(1 / 60, 0.0, 4.0) + every(1 / 60, 5.5, 7.0) + every(1 / 60, 9.5, 11.0)
    assert covered(IntervalCounter(5.0, None, KEYS, lag_s=0.0), frames) == [
        ("0.0", 5.0),  # 4 + 1
        ("5.0", 2.5),  # 0.5 + 1.5 + 0.5 (9.5 .. 10)
        ("10.0", 1.0),  # 10 .. 11
    ]


def test_clock_aligned_bins_split_covered_gaps_at_their_edges():
    # Snapshots every 60 s (an outage is over 4 minutes) on a clock starting at 07:05:00, 15-minute
    # bins: 07:05:30 .. 07:14:30, 07:15:30 .. 07:19:30, an 8-minute outage, 07:27:30 .. 07:33:30.
    # The gap 07:14:30 -> 07:15:30 is split 30 s / 30 s; 07:27:30 -> 07:28:30 -> ... crosses 07:30.
    start = 1714547100.0  # 2024-05-01T07:05:00Z
    frames = every(60.0, 30.0, 570.0) + every(60.0, 630.0, 870.0) + every(60.0, 1350.0, 1710.0)
    assert covered(IntervalCounter(900.0, start, KEYS, lag_s=0.0), frames) == [
        ("2024-05-01T07:00:00Z", 570.0),  # 07:05:30 .. 07:15:00
        ("2024-05-01T07:15:00Z", 420.0),  # 07:15:00 .. 07:19:30 and 07:27:30 .. 07:30:00
        ("2024-05-01T07:30:00Z", 210.0),  # 07:30:00 .. 07:33:30
    ]


def test_an_outage_right_after_the_first_frame_is_not_taken_for_the_frame_rate():
    # One frame at 0, nothing for 10 minutes, then 10 fps for 60 s; 5-minute bins. With no gap before
    # it to measure the frame interval, the 600 s gap is over the first gap's 60 s: an outage.
    frames = [0.0, *every(0.1, 600.0, 660.0)]
    assert covered(IntervalCounter(300.0, None, KEYS, lag_s=0.0), frames) == [
        ("0.0", 0.0),
        ("300.0", 0.0),
        ("600.0", 60.0),
    ]


def csv_rows(rows: list[dict]) -> list[dict[str, str]]:
    """The rows as ``intervals.csv`` holds them (what the batch merge reads)."""
    return list(csv.DictReader(io.StringIO(csv_text(COLUMNS, rows))))


def test_pieces_split_at_an_outage_merge_to_the_whole_runs_coverage():
    # 1 fps 0 .. 100 s, an outage, 1 fps 130 .. 200 s; 60 s bins. A batch slice boundary in the
    # outage: the merged slices must say what one run says.
    first, second = every(1.0, 0.0, 100.0), every(1.0, 130.0, 200.0)
    expected = [("0.0", 60.0), ("60.0", 40.0), ("120.0", 50.0), ("180.0", 20.0)]
    whole = IntervalCounter(60.0, None, KEYS, lag_s=0.0)
    assert covered(whole, first + second) == expected
    pieces = []
    for frames in (first, second):
        counter = IntervalCounter(60.0, None, KEYS, lag_s=0.0)
        pieces.append(csv_rows([row for t in frames for row in counter.update([], t)] + counter.finish()))
    merged, _ = merge_rows(pieces, 60.0)
    assert [
        (r["interval_start"], r["covered_s"]) for r in merged if (r["direction"], r["class_name"]) == ("in", "all")
    ] == expected


# --- the peak-hour factor needs a full hour ----------------------------------------------------


def crossings(count: int, t: float) -> list[LineCrossing]:
    return [LineCrossing(0, t, "main", "in", track_id=i, class_name="car") for i in range(count)]  # type: ignore[arg-type]


def test_a_run_shorter_than_an_hour_has_no_peak_hour_factor():
    counter = IntervalCounter(30.0, None, KEYS, lag_s=0.0)  # a 2-minute run: 4 of the 120 bins of an hour
    for t in range(120):
        counter.update(crossings(1, float(t)) if t % 10 == 0 else [], float(t))
    counter.finish()
    assert counter.summary()["peak_hour"] == {
        "line:main:in": {
            "start": "0.0",
            "volume": 12,
            "phf": None,
            "phf_reason": "the run is shorter than an hour (4 of 120 bins)",
        }
    }


# --- through the CLI: a clip with a 60 s hole in its timestamps ---------------------------------

FPS = Fraction(30000, 1001)
HOLE_AFTER = 110  # frames 0..110, then 60 s without frames, then frames 111..149
HOLE_S = 60


def clip_with_a_hole(source: Path, destination: Path) -> list[Fraction]:
    """The first 150 frames of ``source`` at 29.97 fps, those after frame 110 shifted 60 s later;
    returns each frame's time."""
    times = []
    with av.open(str(source)) as reader, av.open(str(destination), "w") as writer:
        video = reader.streams.video[0]
        stream = writer.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 30000)
        stream.options = {"crf": "18", "preset": "veryfast", "bf": "0"}
        for index, decoded in enumerate(reader.decode(video)):
            if index == 150:
                break
            time_s = index / FPS + (HOLE_S if index > HOLE_AFTER else 0)
            image = decoded.reformat(format="yuv420p")
            image.pts, image.time_base = round(time_s * 30000), Fraction(1, 30000)
            writer.mux(stream.encode(image))
            times.append(time_s)
        writer.mux(stream.encode(None))
    return times


def test_cli_intervals_of_a_clip_with_a_hole_cover_only_what_was_seen(tmp_path: Path, highway: Path):
    clip = tmp_path / "hole.mp4"
    times = clip_with_a_hole(highway, clip)
    settings = {**yaml.safe_load((CONFIGS / "traffic.yaml").read_text()), "output": {"interval": "30s"}}
    config = tmp_path / "traffic_30s.yaml"
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "out"
    result = run_vpipe("run", clip, "--config", config, "--output", out, "--quiet", "--no-video", timeout=600)
    assert result.returncode == 0, result.stderr
    seen_before, seen_after = times[HOLE_AFTER] - times[0], times[-1] - times[HOLE_AFTER + 1]
    rows = list(csv.DictReader((out / "intervals.csv").open()))
    assert {(r["interval_start"], float(r["covered_s"])) for r in rows} == {
        ("0.0", round(float(seen_before), 3)),  # 0 .. 3.670 s
        ("30.0", 0.0),  # the hole
        ("60.0", round(float(seen_after), 3)),  # 63.704 .. 64.972 s
    }
    summary = json.loads((out / "summary.json").read_text())
    peak = summary["intervals"]["peak_hour"]["line:main:in"]
    assert peak["volume"] == summary["lines"]["main"]["in_total"] > 0
    assert (peak["phf"], peak["phf_reason"]) == (None, "the run is shorter than an hour (3 of 120 bins)")


# --- a live feed: timestamp_s is the annotated video's time -----------------------------------


def test_mjpeg_timestamps_are_the_annotated_videos_presentation_times(tmp_path: Path, street: Path):
    camera = MjpegServer(street, fps=12).start()  # no stream clock: timed as read, from when it connected
    try:
        result = run_vpipe("run", camera.url, "--output", tmp_path / "out", "--quiet", "--imgsz", "320",
                           "--max-frames", "40", timeout=300)  # fmt: skip
    finally:
        camera.stop()
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "counts.csv").open()))
    times = [float(row["timestamp_s"]) for row in rows]
    with av.open(str(tmp_path / "out" / "annotated.mp4")) as container:
        video = [float(frame.pts * frame.time_base) for frame in container.decode(video=0)]
    assert len(video) == len(times) == 40
    assert video == pytest.approx(times, abs=1e-3)  # seeking to a row's timestamp_s shows its frame
