"""Live feeds end to end: a real RTSP server and an HTTP MJPEG camera on loopback, started here.

The RTSP camera is GStreamer's RTSP server (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-good/-bad; .ci/run installs them), run with the system Python.
"""

from __future__ import annotations

import csv
import itertools
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from tests.conftest import CONFIGS, REPO, SAMPLES, run_vpipe
from tests.servers.mjpeg import MjpegServer

SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RtspCamera:
    """tests/servers/rtsp_server.py in a subprocess: start, kill (an outage), start again."""

    def __init__(self, video: Path, port: int) -> None:
        self.video, self.port, self.process = video, port, None
        check = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"])
        assert check.returncode == 0, "the RTSP test camera needs Debian's python3-gi and gir1.2-gst-rtsp-server-1.0"

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/live"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(REPO / "tests" / "servers" / "rtsp_server.py"), str(self.video), str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def rtsp_camera() -> Iterator[RtspCamera]:
    camera = RtspCamera(SAMPLES / "highway.mp4", free_port())
    camera.start()
    yield camera
    camera.kill()


def rows_of(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open())) if path.exists() else []


def wait_for_rows(path: Path, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(rows_of(path)) < count:
        time.sleep(0.2)
    assert len(rows_of(path)) >= count, f"only {len(rows_of(path))} rows in {path}"


def vpipe_process(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_rtsp_outage_is_survived_and_counting_goes_on(tmp_path: Path, rtsp_camera: RtspCamera):
    out = tmp_path / "out"
    process = vpipe_process(
        rtsp_camera.url, "--config", CONFIGS / "traffic.yaml", "--output", out, "--quiet", "--imgsz", "320",
        "--stall-timeout", "2",
    )  # fmt: skip
    counts = out / "counts.csv"
    wait_for_rows(counts, 75)  # past the first crossings (frames 56, 57)
    rtsp_camera.kill()  # camera outage
    time.sleep(3)
    rows_before = len(rows_of(counts))
    in_before = int(rows_of(counts)[-1]["main_in"])
    rtsp_camera.start()  # the camera is back; its stream starts again from the clip's beginning
    wait_for_rows(counts, rows_before + 120)
    assert process.poll() is None, "the pipeline must not exit on an outage"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr

    rows = rows_of(counts)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert "stream_disconnected" in kinds and "stream_reconnected" in kinds
    assert kinds.index("stream_disconnected") < kinds.index("stream_reconnected")
    timestamps = [float(row["timestamp_s"]) for row in rows]
    assert timestamps == sorted(timestamps)
    assert max(b - a for a, b in itertools.pairwise(timestamps)) > 2.0, "the outage shows as a gap"
    assert int(rows[-1]["main_in"]) > in_before >= 1, "counts before the outage kept, and counting went on"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reconnects"] >= 1 and summary["status"] == "interrupted"
    assert stderr == "", "--quiet prints nothing but errors, outages included (they are in events.jsonl)"
    with av.open(str(out / "annotated.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) >= len(rows) - 1


def test_two_cameras_at_once_one_model(tmp_path: Path, rtsp_camera: RtspCamera):
    # The cameras differ in shape: the highway one is 960x540, the MJPEG one square. One model is
    # sized for the larger source (320x180 at --imgsz 320, padded to 320x192) and serves both; a model
    # of the square camera's own would take a 320x320 input.
    mjpeg = MjpegServer(SAMPLES / "street_topdown.mp4", size=(320, 320)).start()
    try:
        streams = tmp_path / "cams.streams"
        streams.write_text(f"# two cameras\n{rtsp_camera.url}\n{mjpeg.url}\n")
        result = run_vpipe(
            "run", streams, "--output", tmp_path / "out", "--quiet", "--imgsz", "320", "--max-frames", "90",
            "--read-policy", "all", "--line", "x:0,200,300,200", timeout=300,
        )  # fmt: skip
    finally:
        mjpeg.stop()
    assert result.returncode == 0, result.stderr
    folders = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert folders == sorted([f"127.0.0.1_{rtsp_camera.port}_live", f"127.0.0.1_{mjpeg.port}_video.mjpg"])
    overview = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [(s["source"], s["status"]) for s in overview["sources"]] == [
        (rtsp_camera.url, "completed"),
        (mjpeg.url, "completed"),
    ]
    summaries = [json.loads((tmp_path / "out" / folder / "summary.json").read_text()) for folder in folders]
    for folder, summary in zip(folders, summaries, strict=True):
        assert (summary["status"], summary["frames"]) == ("completed", 90)
        assert len(rows_of(tmp_path / "out" / folder / "counts.csv")) == 90
        with av.open(str(tmp_path / "out" / folder / "annotated.mp4")) as video:
            assert sum(1 for _ in video.decode(video=0)) == 90
    model_keys = ("model", "backend", "precision", "input_size", "inference_threads", "inference_threads_trial_fps")
    first, second = ({key: summary.get(key) for key in model_keys} for summary in summaries)
    assert first == second, "each camera had a model of its own"
    assert first["input_size"] == [192, 320], "the model is not the one sized for the larger camera"


def test_a_dead_url_fails_clearly_after_its_retries_without_showing_the_password(tmp_path: Path):
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/live"
    result = run_vpipe(
        "run", url, "--output", tmp_path / "out", "--max-reconnects", "2", "--stall-timeout", "1", timeout=120
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("vpipe: error: rtsp://admin:***@127.0.0.1:") and "after 3 attempts" in lines[-1]
    assert "hunter2" not in result.stderr + result.stdout
    assert not (tmp_path / "out").exists()


def test_a_password_in_a_camera_url_never_reaches_logs_or_outputs(tmp_path: Path):
    mjpeg = MjpegServer(SAMPLES / "street_topdown.mp4", username="viewer", password="s3cret-Pa55").start()
    try:
        url = f"http://viewer:s3cret-Pa55@127.0.0.1:{mjpeg.port}/video.mjpg"
        result = run_vpipe(
            "run", url, "--output", tmp_path / "out", "--max-frames", "30", "--imgsz", "320", "--read-policy", "all"
        )
    finally:
        mjpeg.stop()
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    for path in (tmp_path / "out").iterdir():
        assert b"s3cret" not in path.read_bytes(), path.name
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["source"] == f"http://viewer:***@127.0.0.1:{mjpeg.port}/video.mjpg"
    assert summary["frames"] == 30


def test_a_new_resolution_after_reconnect(tmp_path: Path):
    port = free_port()
    config = tmp_path / "normalized.yaml"
    config.write_text("coordinates: normalized\nlines:\n  - {name: mid, start: [0, 0.5], end: [1, 0.5]}\n")
    camera = MjpegServer(SAMPLES / "street_topdown.mp4", port=port).start()
    out = tmp_path / "out"
    process = vpipe_process(camera.url, "--config", config, "--output", out, "--quiet", "--imgsz", "320",
                            "--stall-timeout", "2")  # fmt: skip
    try:
        wait_for_rows(out / "counts.csv", 30)
        camera.stop()
        camera = MjpegServer(SAMPLES / "street_topdown.mp4", port=port, size=(320, 180)).start()
        wait_for_rows(out / "counts.csv", len(rows_of(out / "counts.csv")) + 30)
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        camera.stop()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert {"event": "resolution_changed", "width": 320, "height": 180} in [
        {k: e[k] for k in ("event", "width", "height") if k in e} for e in events
    ]
    with av.open(str(out / "annotated.mp4")) as video:  # the video keeps its first size
        assert (video.streams.video[0].width, video.streams.video[0].height) == (640, 360)

    # The same change with lines in pixels cannot be followed: one clear line, exit 2.
    camera = MjpegServer(SAMPLES / "street_topdown.mp4", port=port).start()
    process = vpipe_process(camera.url, "--line", "mid:0,180,640,180", "--output", tmp_path / "px", "--quiet",
                            "--imgsz", "320", "--stall-timeout", "2")  # fmt: skip
    try:
        wait_for_rows(tmp_path / "px" / "counts.csv", 30)
        camera.stop()
        camera = MjpegServer(SAMPLES / "street_topdown.mp4", port=port, size=(320, 180)).start()
        _, stderr = process.communicate(timeout=120)
    finally:
        camera.stop()
    assert process.returncode == 2
    assert "resolution changed from 640x360 to 320x180" in stderr and "coordinates: normalized" in stderr
    assert json.loads((tmp_path / "px" / "summary.json").read_text())["status"] == "failed"


def test_outputs_rotate_by_video_time(tmp_path: Path, highway: Path):
    out = tmp_path / "out"
    result = run_vpipe("run", highway, "--config", CONFIGS / "traffic.yaml", "--output", out, "--quiet",
                       "--imgsz", "320", "--max-frames", "150", "--rotate", "2s")  # fmt: skip
    assert result.returncode == 0, result.stderr
    csvs = sorted(out.glob("counts*.csv"))
    assert [p.name for p in csvs] == ["counts.0001.csv", "counts.0002.csv", "counts.csv"]
    rows = [row for path in [csvs[2], csvs[0], csvs[1]] for row in rows_of(path)]
    assert [int(row["frame_index"]) for row in rows] == list(range(150))
    videos = sorted(out.glob("annotated*.mp4"))
    assert len(videos) == 3
    frames = 0
    for video_path in videos:
        with av.open(str(video_path)) as video:
            frames += sum(1 for _ in video.decode(video=0))
    assert frames == 150
