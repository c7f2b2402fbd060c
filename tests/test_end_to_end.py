"""The real CLI, the real model, the real clips: what a user gets from ``vpipe run``.

The expected counts come from tests/data/<clip>_ground_truth.yaml, established by watching the
clips frame by frame (see the ``method`` field there), not from the pipeline's own output.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import yaml

from pipeline.config import load_slots
from tests.conftest import CONFIGS, GROUND_TRUTH, REPO, SAMPLES, run_vpipe

RunResult = tuple[Any, Path]


def vpipe_run(out: Path, source: Path, *flags: str | Path) -> RunResult:
    result = run_vpipe("run", source, "--output", out, "--quiet", *flags)
    assert result.returncode == 0, result.stderr
    return result, out


@pytest.fixture(scope="module")
def detect_run(tmp_path_factory: pytest.TempPathFactory, highway: Path) -> RunResult:
    return vpipe_run(tmp_path_factory.mktemp("detect"), highway, "--config", CONFIGS / "traffic.yaml")


@pytest.fixture(scope="module")
def segment_run(tmp_path_factory: pytest.TempPathFactory, highway: Path) -> RunResult:
    return vpipe_run(tmp_path_factory.mktemp("segment"), highway, "--config", CONFIGS / "segmentation.yaml")


@pytest.fixture(scope="module")
def strided_run(tmp_path_factory: pytest.TempPathFactory, highway: Path) -> RunResult:
    return vpipe_run(
        tmp_path_factory.mktemp("strided"), highway, "--config", CONFIGS / "traffic.yaml", "--detect-every", "2"
    )


@pytest.fixture(scope="module")
def street_run(tmp_path_factory: pytest.TempPathFactory, street: Path) -> RunResult:
    return vpipe_run(tmp_path_factory.mktemp("street"), street, "--config", CONFIGS / "street.yaml", "--no-video")


def source_timestamps(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(frame.pts * stream.time_base) for frame in container.decode(stream)]


def read_outputs(out: Path) -> tuple[list[dict[str, str]], list[dict[str, Any]], dict[str, Any]]:
    rows = list(csv.DictReader((out / "counts.csv").open()))
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    return rows, events, summary


@pytest.mark.parametrize("run_name", ["detect_run", "segment_run"])
def test_annotated_video_is_h264_with_one_frame_per_source_frame(run_name: str, request, highway: Path):
    _, out = request.getfixturevalue(run_name)
    with av.open(str(highway)) as source, av.open(str(out / "annotated.mp4")) as video:
        src, dst = source.streams.video[0], video.streams.video[0]
        assert dst.codec_context.name == "h264" and dst.codec_context.pix_fmt == "yuv420p"
        assert (dst.width, dst.height) == (src.width, src.height)
        assert dst.average_rate == src.average_rate
        assert sum(1 for _ in video.decode(dst)) == sum(1 for _ in source.decode(src)) == 335


@pytest.mark.parametrize("run_name", ["detect_run", "segment_run"])
def test_counts_csv_has_one_row_per_frame_with_container_timestamps(run_name: str, request, highway: Path):
    _, out = request.getfixturevalue(run_name)
    rows, _, summary = read_outputs(out)
    assert list(rows[0]) == ["frame_index", "timestamp_s", "tracks_active", "main_in", "main_out"]
    assert [int(row["frame_index"]) for row in rows] == list(range(335))
    assert [float(row["timestamp_s"]) for row in rows] == pytest.approx(source_timestamps(highway), abs=1e-4)
    for column in ("main_in", "main_out"):
        values = [int(row[column]) for row in rows]
        assert values == sorted(values), f"{column} is cumulative"
    assert (int(rows[-1]["main_in"]), int(rows[-1]["main_out"])) == (
        summary["lines"]["main"]["in_total"],
        summary["lines"]["main"]["out_total"],
    )
    assert max(int(row["tracks_active"]) for row in rows) > 0


DEFAULT_GROUPS = {"car": "cars", "truck": "trucks", "bus": "buses", "motorcycle": "motorcycles"}
"""The default class groups of the vehicle classes (configs/example.yaml)."""


@pytest.mark.parametrize("run_name", ["detect_run", "segment_run"])
def test_summary_matches_events(run_name: str, request, highway: Path):
    _, out = request.getfixturevalue(run_name)
    rows, events, summary = read_outputs(out)
    assert summary["status"] == "completed"
    assert summary["frames"] == 335 and summary["fps"] == pytest.approx(29.97, abs=0.01)
    assert summary["duration_s"] == pytest.approx(335 * 1001 / 30000, abs=1e-3)
    assert summary["processing_fps"] > 0 and summary["tracks_total"] > 0
    assert summary["task"] == ("detect" if run_name == "detect_run" else "segment")
    for direction in ("in", "out"):
        by_class = Counter(e["class_name"] for e in events if e["direction"] == direction and e["line"] == "main")
        assert summary["lines"]["main"][direction] == dict(by_class)
        assert summary["lines"]["main"][f"{direction}_total"] == sum(by_class.values())
        groups = Counter(DEFAULT_GROUPS[e["class_name"]] for e in events if e["direction"] == direction)
        assert summary["lines"]["main"][f"{direction}_by_group"] == dict(groups)
    for event in events:
        assert event["class_group"] == DEFAULT_GROUPS[event["class_name"]]
        assert set(event) == {
            "event",
            "frame_index",
            "timestamp_s",
            "line",
            "direction",
            "track_id",
            "class_name",
            "class_group",
            "lane",
            "crossed_s",
            "speed_kmh",
            "seq",  # the record's identity: numbered across restarts, with its process's run and wall-clock time
            "run_id",
            "time_utc",
        }
        assert float(rows[event["frame_index"]]["timestamp_s"]) == pytest.approx(event["timestamp_s"], abs=1e-4)
        # on the line between two sightings, at most the tracker's buffer before the count's confirmation
        assert event["timestamp_s"] - 1.0 <= event["crossed_s"] <= event["timestamp_s"]
    crossings = Counter((e["track_id"], e["direction"]) for e in events)
    assert max(crossings.values()) == 1, "a track counts at most once per line and direction"


def ground_truth(clip: str) -> dict[str, dict[str, Any]]:
    return yaml.safe_load((GROUND_TRUTH / f"{clip}_ground_truth.yaml").read_text())["lines"]


@pytest.mark.parametrize(
    ("run_name", "clip"),
    [
        ("detect_run", "highway"),
        ("segment_run", "highway"),
        ("strided_run", "highway"),
        ("street_run", "street_topdown"),
    ],
)
def test_counts_match_ground_truth_within_one_vehicle(run_name: str, clip: str, request):
    _, out = request.getfixturevalue(run_name)
    summary = json.loads((out / "summary.json").read_text())
    truth = ground_truth(clip)
    assert set(summary["lines"]) == set(truth)
    for name, line in truth.items():
        for direction in ("in", "out"):
            counted = summary["lines"][name][f"{direction}_total"]
            assert abs(counted - line[direction]) <= 1, (
                f"{clip} {name} {direction}: {counted} vs truth {line[direction]}"
            )


def test_no_video_writes_everything_else(street_run: RunResult):
    _, out = street_run
    assert not (out / "annotated.mp4").exists()
    assert {p.name for p in out.iterdir()} == {
        ".vpipe.lock",  # held by the run while it writes the folder
        "counts.csv",
        "events.jsonl",
        "intervals.csv",
        "summary.json",
        "counts.png",
        "heatmap.png",
        "vpipe.sqlite",
    }


def test_image_folder_source(tmp_path: Path, highway: Path):
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    with av.open(str(highway)) as container:
        for index, frame in zip(range(12), container.decode(video=0), strict=False):
            frame.to_image().save(frames_dir / f"frame_{index:04d}.jpg")
    _, out = vpipe_run(
        tmp_path / "out", Path(f"{frames_dir}/*.jpg"), "--line", "main:150,330,830,330", "--imgsz", "320"
    )
    rows, _, summary = read_outputs(out)
    assert summary["frames"] == len(rows) == 12
    assert float(rows[6]["timestamp_s"]) == pytest.approx(6 / 30, abs=1e-4)  # source.fps defaults to 30
    with av.open(str(out / "annotated.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) == 12


def test_plots_are_written(detect_run: RunResult):
    _, out = detect_run
    for name in ("counts.png", "heatmap.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.std() > 5, name
    heatmap = cv2.imread(str(out / "heatmap.png"))
    assert heatmap.shape[:2] == (540, 960)


@pytest.fixture(scope="module")
def parking_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return vpipe_run(
        tmp_path_factory.mktemp("parking"),
        SAMPLES / "lot_topdown.mp4",
        "--config",
        CONFIGS / "parking_drive_through.yaml",
        "--no-video",
    )


def test_cars_driving_through_the_lot_never_occupy_a_slot(parking_run: RunResult):
    """In lot_topdown.mp4 cars only drive through (watched: none stops); the 2 s debounce must hold."""
    _, out = parking_run
    rows, events, summary = read_outputs(out)
    assert {int(row["slots_occupied"]) for row in rows} == {0}
    assert {int(row["slots_free"]) for row in rows} == {8}
    assert not [e for e in events if e["event"].startswith("slot_")]
    assert (out / "parking.jsonl").read_text() == ""
    assert summary["parking"]["occupied_at_end"] == 0
    assert all(slot["utilisation"] == 0.0 for slot in summary["parking"]["slots"].values())
    assert summary["zones"]["lot"]["enters"] == len([e for e in events if e["event"] == "zone_enter"])


def test_slots_command_writes_a_loadable_file_and_a_preview(tmp_path: Path):
    output = tmp_path / "slots.yaml"
    result = run_vpipe(
        "slots", SAMPLES / "lot_topdown.mp4", "--grid", "2x3", "--region", "40,60,700,400", "--output", output
    )
    assert result.returncode == 0, result.stderr
    slots = load_slots(output)
    assert [slot.name for slot in slots] == ["A1", "A2", "A3", "B1", "B2", "B3"]
    assert slots[4].polygon == [(260.0, 230.0), (480.0, 230.0), (480.0, 400.0), (260.0, 400.0)]
    preview = cv2.imread(str(output.with_suffix(".png")))
    assert preview is not None and preview.shape[:2] == (432, 768)
    bad = run_vpipe("slots", SAMPLES / "lot_topdown.mp4", "--grid", "2x3", "--region", "0,0,900,400")
    assert bad.returncode == 2 and "outside the 768x432 frame" in bad.stderr


def test_peak_memory_is_the_run_s_own_not_its_parent_s():
    """Linux keeps ru_maxrss across fork+exec: a vpipe started by a big process (pytest, a batch
    worker) reported the parent's peak. The summary's figure must be the run's own."""
    ballast = np.ones(150_000_000)  # 1.2 GB resident in this (parent) process
    child = subprocess.run(
        [sys.executable, "-c", "from pipeline.memory import peak_rss_mb; print(peak_rss_mb())"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ballast.sum() > 0
    assert 10 < float(child.stdout) < 600


def test_summary_reports_backend_input_size_and_memory(detect_run: RunResult, strided_run: RunResult):
    _, out = detect_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "openvino"  # auto on CPU
    assert summary["input_size"] == [384, 640]  # 960x540 at imgsz 640, rectangular
    assert 100 < summary["peak_rss_mb"] < 1536
    assert summary["peak_gpu_mb"] is None  # a CPU run
    # Every core or one fewer, timed on the first 192 frames (the clip has 335): the one kept is
    # one of the two, each with a rate.
    trial = {int(threads): fps for threads, fps in summary["inference_threads_trial_fps"].items()}
    every_core = max(trial)
    assert sorted(trial) == [every_core - 1, every_core] and every_core >= 2
    assert summary["inference_threads"] in trial and min(trial.values()) > 0
    _, strided = strided_run
    assert json.loads((strided / "summary.json").read_text())["detect_every"] == 2
    with av.open(str(strided / "annotated.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) == 335  # every frame is still drawn and written


def test_stride_works_with_every_backend(tmp_path: Path, highway: Path):
    """--detect-every with a backend that goes through Ultralytics' predictor (ONNX here): the frames
    between detections ask the model for nothing, and every frame is still tracked and written."""
    _, out = vpipe_run(
        tmp_path / "out", highway, "--backend", "onnx", "--detect-every", "2", "--imgsz", "320", "--max-frames", "40",
        "--no-video",
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "onnx" and summary["detect_every"] == 2 and summary["frames"] == 40
    rows = (out / "counts.csv").read_text().splitlines()
    assert len(rows) == 41 and summary["tracks_total"] > 0


def test_a_small_source_is_upscaled_to_imgsz_unless_asked_not_to(tmp_path: Path, highway: Path):
    small = tmp_path / "small.mp4"
    from pipeline.io.outputs.sinks import H264VideoSink
    from pipeline.io.sources.files import open_source

    with H264VideoSink(small, 320, 240, open_source(str(highway)).fps) as sink:
        for frame in open_source(str(highway), max_frames=10):
            sink.write(cv2.resize(frame.image, (320, 240)))
    _, out = vpipe_run(tmp_path / "up", small, "--no-video")
    assert json.loads((out / "summary.json").read_text())["input_size"] == [480, 640]  # 4:3 at 640
    _, out = vpipe_run(tmp_path / "out", small, "--no-video", "--no-upscale")
    assert json.loads((out / "summary.json").read_text())["input_size"] == [256, 320]  # 240 to a multiple of 32
