"""``vpipe batch`` (``python -m pipeline.batch``) on real Ray, the real model and the sample clips.

A Ray head started by these tests on 127.0.0.1 (``ray start --head --block``, stopped by
terminating that process) stands in for a cluster; the driver connects with ``--ray-address``.
One test lets the driver start Ray itself, as on a laptop. Expected counts come from ``vpipe run``
on the same files: a batch must count exactly what a single run counts.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
import yaml

from pipeline.analytics import Analytics, Counts
from pipeline.analytics.events import CrosswalkCrossing, Movement
from pipeline.analytics.tally import SliceTally
from pipeline.batch.manifest import MANIFEST_NAME, ItemRecord, Manifest
from pipeline.batch.slicing import plan_slices, probe_timestamps
from pipeline.batch.storage import OutputFolder, list_inputs
from pipeline.batch.summaries import merge_slices
from pipeline.config import load_config
from pipeline.durations import format_duration, parse_duration
from pipeline.errors import SourceError
from pipeline.io.outputs.sinks import H264VideoSink
from pipeline.run.summary import ModelInfo, RunSummary, SlicePart
from tests.conftest import CONFIGS, REPO, SAMPLES, run_vpipe

RAY = Path(sys.executable).with_name("ray")
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray on Linux binds the machine's address; this keeps it on loopback
    "RAY_AUTH_MODE": "disabled",  # a loopback-only test cluster; and no token written to ~/.ray by a local start
    "YOLO_OFFLINE": "1",
}
FAST = ("--config", CONFIGS / "traffic.yaml", "--imgsz", "320", "--no-video")
"""Every batch and its reference ``vpipe run`` use the same settings (small input, no video: 2 CPUs)."""


def run_batch(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pipeline.batch ARGS`` from the repository root and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.batch", *map(str, args)],
        cwd=REPO,
        env={**os.environ, **RAY_ENV},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_batch(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.batch", *map(str, args)],
        cwd=REPO,
        env={**os.environ, **RAY_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A one-node Ray cluster on 127.0.0.1: 2 CPUs, a 200 MB object store, no dashboard."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="vpb", dir="/tmp")  # short: Ray's socket paths are length-limited
    command = [
        RAY, "start", "--head", "--block", "--port", port, "--node-ip-address", "127.0.0.1",
        "--num-cpus", 2, "--object-store-memory", 200_000_000, "--include-dashboard", "false",
        "--disable-usage-stats", "--temp-dir", temp_dir, "--dashboard-agent-listen-port", free_port(),
    ]  # fmt: skip
    head = subprocess.Popen(
        list(map(str, command)),
        env={**os.environ, **RAY_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in head.stdout or []], daemon=True).start()
    deadline, log = time.monotonic() + 90, []
    try:
        while not any("Ray runtime started" in line for line in log):
            assert head.poll() is None and time.monotonic() < deadline, "ray start failed:\n" + "".join(log)
            try:
                log.append(lines.get(timeout=1))
            except queue.Empty:
                continue
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()  # `ray start --block` stops the processes it started
        head.wait(timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)


def cut_clip(source: Path, target: Path, start: int, stop: int) -> Path:
    """Re-encode frames [start, stop) of ``source`` as a new H.264 clip."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        with H264VideoSink(target, stream.width, stream.height, stream.average_rate) as sink:
            for index, frame in enumerate(container.decode(stream)):
                if index >= stop:
                    break
                if index >= start:
                    sink.write(frame.to_ndarray(format="bgr24"))
    return target


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different clips cut from highway.mp4, each with crossings of the ``main`` line."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        "early": cut_clip(SAMPLES / "highway.mp4", folder / "early.mp4", 0, 110),
        "late": cut_clip(SAMPLES / "highway.mp4", folder / "late.mp4", 110, 250),
    }


def vpipe_run_summary(source: Path, out: Path, *flags: str | Path) -> dict[str, Any]:
    result = run_vpipe("run", source, "--output", out, "--quiet", *FAST, *flags)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "summary.json").read_text())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def manifest_records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]


# --- a cluster batch counts what vpipe run counts ---------------------------------------------


def test_cluster_batch_counts_equal_vpipe_run_per_video(tmp_path: Path, clips: dict[str, Path], ray_address: str):
    archive = tmp_path / "archive"
    layout = {
        "cam1/early.mp4": "early",
        "cam1/late.mp4": "late",
        "cam2/day/early.mp4": "early",
        "cam2/late.mp4": "late",
    }
    for relative, clip in layout.items():
        (archive / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clips[clip], archive / relative)
    out = tmp_path / "out"
    result = run_batch(f"{archive}/**/*.mp4", "--output", out, "--ray-address", ray_address, "--workers", "1", *FAST)
    assert result.returncode == 0, result.stderr
    assert "4 videos: 4 completed, 0 truncated, 0 failed, 0 pending" in result.stdout
    spans = sorted((r["started_at"], r["started_at"] + r["elapsed_s"]) for r in manifest_records(out))
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans)), (
        "--workers 1: one at a time"
    )

    expected = {name: vpipe_run_summary(path, tmp_path / f"run_{name}") for name, path in clips.items()}
    assert expected["early"]["lines"] != expected["late"]["lines"], "the clips must differ for this test to bite"
    merged = read_json(out / "batch_summary.json")
    rows = {row["video"]: row for row in csv.DictReader((out / "batch_summary.csv").open())}
    assert sorted(rows) == sorted(layout) == [video["video"] for video in merged["videos"]]
    for video in merged["videos"]:
        reference = expected[layout[video["video"]]]
        item = read_json(out / video["video"].removesuffix(".mp4") / "summary.json")  # as vpipe run writes it
        assert item["status"] == video["status"] == "completed"
        assert item["lines"] == video["lines"] == reference["lines"]
        assert item["frames"] == video["frames"] == reference["frames"]
        row = rows[video["video"]]
        line = reference["lines"]["main"]
        assert (int(row["main_in"]), int(row["main_out"])) == (line["in_total"], line["out_total"])
        assert int(row["main_in_car"]) == line["in"].get("car", 0)
        assert int(row["frames"]) == reference["frames"] and row["status"] == "completed"
    totals = merged["lines"]["main"]
    assert totals["in_total"] == 2 * (
        expected["early"]["lines"]["main"]["in_total"] + expected["late"]["lines"]["main"]["in_total"]
    )
    assert merged["frames"] == 2 * (110 + 140) and merged["completed"] == 4


# --- --split: slices add up to the whole video ------------------------------------------------


def test_split_slices_add_up_to_the_whole_clip_across_boundaries(tmp_path: Path, highway: Path, ray_address: str):
    """Events, counts and interval counts of the slices equal those of one ``vpipe run``; 2 s bins put
    both slice boundaries (4.2 s, 8.4 s) inside a bin."""
    settings = {**yaml.safe_load((CONFIGS / "traffic.yaml").read_text()), "output": {"interval": "2s"}}
    config = tmp_path / "traffic_2s.yaml"
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "split"
    result = run_batch(
        highway, "--output", out, "--ray-address", ray_address, "--split", "4.2s", "--overlap", "2s", *FAST,
        "--config", config,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    whole = vpipe_run_summary(highway, tmp_path / "whole", "--config", config)
    whole_events = [json.loads(line) for line in (tmp_path / "whole" / "events.jsonl").read_text().splitlines()]

    video = read_json(out / "highway" / "summary.json")
    parts = video["parts"]
    boundaries = [part["start_frame"] for part in parts[1:]]
    assert [(p["start_frame"], p["end_frame"]) for p in parts] == [(0, 126), (126, 252), (252, 335)]
    near = [e["frame_index"] for e in whole_events if any(abs(e["frame_index"] - b) <= 3 for b in boundaries)]
    assert near, f"no crossing within 3 frames of a boundary {boundaries}: the test would not test anything"

    slice_events = []
    for part in parts:
        events = [
            json.loads(line) for line in (out / "highway" / part["part"] / "events.jsonl").read_text().splitlines()
        ]
        assert all(part["start_frame"] <= e["frame_index"] < part["end_frame"] for e in events)
        slice_events += events
    key = ("frame_index", "direction", "class_name")
    assert [tuple(e[k] for k in key) for e in slice_events] == [tuple(e[k] for k in key) for e in whole_events]
    assert video["frames"] == whole["frames"] == 335
    assert video["lines"]["main"]["in_total"] == whole["lines"]["main"]["in_total"] > 0
    assert video["lines"]["main"]["out_total"] == whole["lines"]["main"]["out_total"]
    assert video["lines"] == whole["lines"]
    row = next(csv.DictReader((out / "batch_summary.csv").open()))
    assert (row["slices"], int(row["main_in"])) == ("3", whole["lines"]["main"]["in_total"])

    def bins(path: Path) -> dict[tuple[str, ...], tuple[int, float]]:
        rows = csv.DictReader(path.open())
        return {tuple(r[k] for k in ("interval_start", "name", "direction", "class_name")): (
            int(r["count"]), float(r["covered_s"])) for r in rows}  # fmt: skip

    split_bins, whole_bins = bins(out / "highway" / "intervals.csv"), bins(tmp_path / "whole" / "intervals.csv")
    assert len(whole_bins) >= 12 and sum(count for count, _ in whole_bins.values()) > 0
    assert {k: c for k, (c, _) in split_bins.items()} == {k: c for k, (c, _) in whole_bins.items()}
    frame_s = 1 / whole["fps"]  # a slice covers its bins up to its last frame's time, one frame short of the next
    assert all(abs(split_bins[k][1] - s) <= frame_s + 1e-3 for k, (_, s) in whole_bins.items())
    assert video["intervals"] == whole["intervals"]


# --- resume after the driver is killed ---------------------------------------------------------


def wait_for_completed(out: Path, driver: subprocess.Popen[str], count: int) -> None:
    """Wait until the manifest records ``count`` completed items (the driver must still be running)."""
    deadline = time.monotonic() + 180
    while not ((out / MANIFEST_NAME).exists() and len(completed_items(out)) >= count):
        assert driver.poll() is None and time.monotonic() < deadline, "the batch ended before the items finished"
        time.sleep(0.05)


def completed_items(out: Path) -> set[str]:
    return {r["id"] for r in manifest_records(out) if r["status"] == "completed"}


def test_killed_or_stopped_driver_resumes_without_redoing_finished_items(
    tmp_path: Path, highway: Path, ray_address: str
):
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ("a", "b", "c", "d"):
        shutil.copy(highway, archive / f"{name}.mp4")
    out = tmp_path / "out"
    flags = (f"{archive}/*.mp4", "--output", out, "--ray-address", ray_address, "--max-frames", "200", *FAST)

    killed = start_batch(*flags, "--workers", "1")
    wait_for_completed(out, killed, 1)
    killed.send_signal(signal.SIGKILL)  # no chance to clean up
    killed.wait(timeout=30)
    after_kill = completed_items(out)
    assert 1 <= len(after_kill) < 4, after_kill

    stopped = start_batch(*flags, "--workers", "1")
    wait_for_completed(out, stopped, len(after_kill) + 1)
    stopped.send_signal(signal.SIGTERM)  # as Ctrl-C: stops, writes the summaries, exit code 130
    assert stopped.wait(timeout=60) == 130
    after_stop = completed_items(out)
    assert after_kill < after_stop and len(after_stop) < 4, after_stop
    stopped_summary = read_json(out / "batch_summary.json")
    assert stopped_summary["run"]["interrupted"] and stopped_summary["completed"] == len(after_stop)
    assert stopped_summary["pending"] == 4 - len(after_stop)

    stamps = {p: p.stat().st_mtime_ns for video in after_stop for p in (out / video.removesuffix(".mp4")).iterdir()}
    assert {p.name for p in stamps} >= {"summary.json", "counts.csv", "events.jsonl"}
    time.sleep(0.05)  # any rewrite would now get a later mtime
    result = run_batch(*flags)
    assert result.returncode == 0, result.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "finished items were processed again"
    records = manifest_records(out)
    assert sorted(r["id"] for r in records) == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"], "each item recorded once"
    merged = read_json(out / "batch_summary.json")
    assert merged["completed"] == 4 and merged["run"]["items_finished"] == 4 - len(after_stop)
    counts = {json.dumps(video["lines"], sort_keys=True) for video in merged["videos"]}
    assert len(counts) == 1, "identical copies, resumed or not, count the same"


# --- a corrupt file among good ones, with Ray started by the driver ----------------------------


def test_corrupt_file_is_reported_and_the_others_complete(tmp_path: Path, clips: dict[str, Path]):
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy(clips["early"], archive / "good1.mp4")
    shutil.copy(clips["early"], archive / "good2.mp4")
    (archive / "broken.mp4").write_bytes(clips["early"].read_bytes()[:30_000])  # an upload cut short
    out = tmp_path / "out"
    result = run_batch(archive, "--output", out, "--max-frames", "40", "--retries", "2", *FAST)  # no --ray-address

    assert result.returncode == 1, result.stderr
    failure = [line for line in result.stdout.splitlines() if line.startswith("failed:")]
    assert len(failure) == 1 and failure[0].startswith("failed: broken.mp4: ") and "broken.mp4" in failure[0][20:]
    rows = {row["video"]: row for row in csv.DictReader((out / "batch_summary.csv").open())}
    assert rows["broken.mp4"]["status"] == "failed" and rows["broken.mp4"]["error"] in failure[0]
    assert rows["good1.mp4"]["status"] == rows["good2.mp4"]["status"] == "completed"
    assert int(rows["good1.mp4"]["frames"]) == int(rows["good2.mp4"]["frames"]) == 40
    broken = next(r for r in manifest_records(out) if r["id"] == "broken.mp4")
    assert broken["attempts"] == 1, "bad input is not retried"
    summary = read_json(out / "broken" / "summary.json")  # as vpipe run leaves a file that fails mid-way
    assert summary["status"] == "failed" and summary["error"] == rows["broken.mp4"]["error"]


# --- inputs and outputs through fsspec ---------------------------------------------------------


def test_fsspec_urls_for_inputs_and_outputs(tmp_path: Path, clips: dict[str, Path], ray_address: str):
    (tmp_path / "in" / "cam").mkdir(parents=True)
    shutil.copy(clips["late"], tmp_path / "in" / "cam" / "late.mp4")
    source, out = f"file://{tmp_path}/in/**/*.mp4", f"file://{tmp_path}/out"
    result = run_batch(source, "--output", out, "--ray-address", ray_address, "--max-frames", "30", *FAST)
    assert result.returncode == 0, result.stderr
    summary = read_json(tmp_path / "out" / "cam" / "late" / "summary.json")
    assert summary["source"] == f"file://{tmp_path}/in/cam/late.mp4" and summary["frames"] == 30
    assert summary["output_dir"] == f"{out}/cam/late"
    assert len((tmp_path / "out" / "cam" / "late" / "counts.csv").read_text().splitlines()) == 31
    assert read_json(tmp_path / "out" / "batch_summary.json")["completed"] == 1


# --- errors: one line, exit code 2 -------------------------------------------------------------


def test_without_ray_the_error_says_how_to_install_it(tmp_path: Path):
    block_ray = (
        "import sys; sys.modules['ray'] = None; from pipeline.batch.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", block_ray, str(SAMPLES / "highway.mp4"), "--output", str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == "vpipe: error: vpipe batch needs Ray: pip install 'vpipe[cluster]'\n"
    assert not (tmp_path / "out").exists()


def test_the_rest_of_vpipe_imports_without_ray():
    code = "import sys; sys.modules['ray'] = None; import pipeline.batch.cli, pipeline.batch.job, pipeline.cli"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=120).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no/such/*.mp4", "--output", "{tmp}"], "no/such/*.mp4: no files match"),
        ([str(SAMPLES / "highway.mp4"), "--output", "{tmp}", "--split", "10x"], "expected a duration such as 10m"),
        ([str(SAMPLES / "highway.mp4"), "--output", "{tmp}", "--config", "nope.yaml"], "nope.yaml: cannot read config"),
        (
            [
                str(SAMPLES / "lot_topdown.mp4"),
                "--output",
                "{tmp}",
                "--config",
                str(CONFIGS / "parking_drive_through.yaml"),
                "--split",
                "1m",
            ],
            "parking slots cannot be split",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], message: str):
    result = run_batch(*[a.replace("{tmp}", str(tmp_path / "out")) for a in args], timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


# --- the parts, without Ray ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10m", 600),
        ("90s", 90),
        ("1h", 3600),
        ("1h30m", 5400),
        ("4.2s", Fraction(21, 5)),
        ("250ms", Fraction(1, 4)),
        ("45", 45),
    ],
)
def test_durations(text: str, seconds: Fraction):
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "m", "10x", "1m 30s", "-5s", "s10"])
def test_bad_durations(text: str):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_slices_follow_the_container_timestamps(highway: Path):
    pts, time_base = probe_timestamps(highway)
    assert len(pts) == 335
    split, overlap = Fraction(4), Fraction(1)
    slices = plan_slices(pts, time_base, split, overlap)
    seconds = [(p - pts[0]) * time_base for p in pts]
    assert [s.index for s in slices] == [0, 1, 2]
    assert slices[0].start_frame == 0 and slices[-1].end_frame == 335 and slices[-1].end_pts is None
    for previous, current in itertools.pairwise(slices):
        assert previous.end_frame == current.start_frame, "slices tile the video"
        assert seconds[current.start_frame] >= current.index * split > seconds[current.start_frame - 1]
        assert seconds[current.warmup_frame] >= current.index * split - overlap > seconds[current.warmup_frame - 1]
        assert current.start_pts == pts[current.start_frame] and previous.end_pts == current.start_pts
    assert plan_slices(pts, time_base, split, overlap) == slices, "deterministic"
    assert probe_timestamps(highway, max_frames=50)[0] == pts[:50]


def test_a_gap_longer_than_a_slice_leaves_no_empty_slice():
    pts = [0, 1, 2, 30, 31]  # seconds, time base 1
    slices = plan_slices(pts, Fraction(1), split_s=Fraction(10), overlap_s=Fraction(5))
    assert [(s.index, s.warmup_frame, s.start_frame, s.end_frame) for s in slices] == [(0, 0, 0, 3), (3, 3, 3, 5)]


def test_manifest_survives_a_record_cut_short(tmp_path: Path):
    folder = OutputFolder(str(tmp_path))
    manifest = Manifest(folder)
    identity = {"size": 5, "mtime": 1.5}
    manifest.add(ItemRecord("a.mp4", "a.mp4", None, "completed", identity, "fp", 1, summary={"frames": 3}))
    manifest.close()
    with (tmp_path / MANIFEST_NAME).open("a") as journal:
        journal.write('{"type":"item","id":"b.mp4","vid')  # the driver was killed mid-write
    manifest = Manifest(folder)
    assert manifest.finished("a.mp4", identity, "fp") is not None
    assert manifest.finished("a.mp4", {**identity, "mtime": 2.0}, "fp") is None, "a changed input is redone"
    assert manifest.finished("a.mp4", identity, "other settings") is None
    assert "b.mp4" not in manifest.items
    manifest.add(ItemRecord("c.mp4", "c.mp4", None, "failed", identity, "fp", 3, error="boom"))
    manifest.close()
    reloaded = Manifest(folder)
    assert reloaded.items["c.mp4"].error == "boom" and reloaded.finished("c.mp4", identity, "fp") is None
    reloaded.close()


def test_inputs_keep_their_relative_paths_and_skip_the_output_folder(tmp_path: Path):
    for relative in ("cam1/a.mp4", "cam1/deep/b.mp4", "c.mp4", "notes.txt", "runs/cam1/a/annotated.mp4"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x" * 3)
    found = list_inputs(f"{tmp_path}/**/*.mp4", exclude=str(tmp_path / "runs"))
    assert [i.relative for i in found] == ["c.mp4", "cam1/a.mp4", "cam1/deep/b.mp4"]
    assert [i.relative for i in list_inputs(str(tmp_path / "cam1"))] == ["a.mp4", "deep/b.mp4"]
    assert found[0].size == 3 and found[0].url == str(tmp_path / "c.mp4")
    with pytest.raises(SourceError, match="no files match"):
        list_inputs(f"{tmp_path}/*.mkv")


def slice_summary(frames: int, processing_fps: float, counts: Counts) -> RunSummary:
    """A done slice's summary at 10 frames/s with these counts."""
    model = ModelInfo("yolo11n.pt", "detect", "cpu", 640, "openvino", "int8", [384, 640], 2)
    return RunSummary("a.mp4", 10.0, 960, 540, model, detect_every=1, output_dir="out", frames=frames,
                      duration_s=frames / 10, processing_fps=processing_fps, status="completed",
                      part=SlicePart("part-0000", 0, frames), counted=True, counts=counts)  # fmt: skip


def test_merged_slices_add_counts_and_weight_rates():
    def part(frames: int, fps: float, cars_in: int, zone_mean: float) -> RunSummary:
        line = {"in": {"car": cars_in}, "out": {}, "in_total": cars_in, "out_total": 0}
        zone = {
            "max_count": cars_in,
            "mean_count": zone_mean,
            "enters": 1,
            "exits": 1,
            "mean_dwell_s": 2.0,
            "max_dwell_s": 2.0,
        }
        return slice_summary(frames, fps, Counts({"main": line}, {"z": zone}))

    merged = merge_slices([part(100, 50.0, 2, 1.0), part(300, 25.0, 3, 3.0)])
    assert merged.counts.lines["main"]["in"] == {"car": 5} and merged.frames == 400
    assert merged.processing_fps == pytest.approx(400 / (100 / 50 + 300 / 25), abs=0.01)
    assert merged.counts.zones["z"]["mean_count"] == pytest.approx(2.5) and merged.counts.zones["z"]["max_count"] == 3
    assert merged.duration_s == pytest.approx(40.0)


def test_slices_count_movements_and_the_video_adds_them_up():
    """A slice counts the movements that end on its counted frames (zeros for every named pair);
    the video's summary adds them per movement and class, ``A->?`` included."""

    def movement(name: str, class_name: str) -> Movement:
        origin, destination = name.split("->")
        to = None if destination == "?" else destination
        return Movement(100, 4.0, name, origin, to, 10, 1.0, 3.0, track_id=1, class_name=class_name)

    pairs = ["West->East", "East->West"]
    first, second = SliceTally([], [], lanes={}, movements=pairs), SliceTally([], [], lanes={}, movements=pairs)
    first.add([movement("West->East", "car"), movement("West->East", "truck")], zone_counts={})
    second.add([movement("West->East", "car"), movement("East->?", "car")], zone_counts={})
    assert first.summary().movements["counts"]["East->West"] == {"total": 0, "by_class": {}}
    merged = merge_slices([slice_summary(10, 10.0, first.summary()), slice_summary(10, 10.0, second.summary())])
    assert merged.counts.movements == {
        "counts": {
            "West->East": {"total": 3, "by_class": {"car": 2, "truck": 1}},
            "East->West": {"total": 0, "by_class": {}},
            "East->?": {"total": 1, "by_class": {"car": 1}},
        }
    }
    assert "movements" not in merge_slices([slice_summary(10, 10.0, SliceTally([], [], lanes={}).summary())]).to_json()


def test_slices_count_crosswalk_pedestrians_and_the_video_adds_them_up():
    """A slice counts the pedestrians of its counted frames per crosswalk (and direction across a line,
    zeros included); the video's summary adds them up."""
    config = load_config(
        None,
        {
            "movements": {
                "crosswalks": [
                    {"name": "zebra", "polygon": [[0, 0], [100, 0], [100, 20], [0, 20]]},
                    {"name": "kerb", "line": [[200, 100], [200, 140]]},
                ]
            }
        },
    )

    def walk(name: str, direction: str | None) -> CrosswalkCrossing:
        return CrosswalkCrossing(100, 4.0, name, direction, track_id=1, class_name="person")

    first = SliceTally.for_analytics(Analytics.for_run(config))
    second = SliceTally.for_analytics(Analytics.for_run(config))
    first.add([walk("zebra", None), walk("kerb", "in"), walk("kerb", "in")], zone_counts={})
    second.add([walk("zebra", None), walk("zebra", None), walk("kerb", "out")], zone_counts={})
    assert first.summary().crosswalks == {"zebra": {"total": 1}, "kerb": {"total": 2, "in": 2, "out": 0}}
    merged = merge_slices([slice_summary(10, 10.0, first.summary()), slice_summary(10, 10.0, second.summary())])
    assert merged.to_json()["crosswalks"] == {"zebra": {"total": 3}, "kerb": {"total": 3, "in": 2, "out": 1}}
    assert "crosswalks" not in merge_slices([slice_summary(10, 10.0, SliceTally([], [], lanes={}).summary())]).to_json()
