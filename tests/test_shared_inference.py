"""The shared inference stage of ``--workers N`` (``--shared-inference true``).

The request/reply protocol with the real OpenVINO model in a real stage process, the test playing
the workers: detections equal the model's run here on the same frames (frames of two sizes), a
worker that goes leaves the others served, a stage that dies is a clear error, a model that fails to
load is one; then the real CLI: four cameras on two workers count as the clip alone, event by event,
and stopping or killing a part of a run finalizes every output and leaves no shared memory behind.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest

from pipeline.config import Config
from pipeline.errors import ModelError
from pipeline.evaluation import Tolerance, load_counted, load_truth, match_crossings
from pipeline.models import Detector
from pipeline.models.remote import StageGone, connect
from pipeline.run.inference_stage import serve, shares_inference
from tests.conftest import CONFIGS, GROUND_TRUTH, REPO, SAMPLES, run_highway_cameras, run_vpipe

HIGHWAY = SAMPLES / "highway.mp4"
SHARED = ("--workers", "2", "--shared-inference", "true")


def segments() -> set[str]:
    """Python's shared memory segments on this machine (``psm_*``)."""
    return {name for name in os.listdir("/dev/shm") if name.startswith("psm_")}


def highway_frames(*indices: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(HIGHWAY))
    frames = []
    for index in range(max(indices) + 1):
        ok, frame = capture.read()
        assert ok
        if index in indices:
            frames.append(frame)
    capture.release()
    return frames


def start_stage(workers: int, config: Config | None = None) -> tuple[multiprocessing.Process, list[Connection]]:
    """A stage process serving ``workers`` pipes; the workers' ends."""
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe() for _ in range(workers)]
    stage = context.Process(target=serve, args=(config or Config(), [end for _, end in pipes], True))
    stage.start()
    for _, end in pipes:
        end.close()
    return stage, [end for end, _ in pipes]  # type: ignore[return-value]


def connect_all(ends: list[Connection], sizes: list[tuple[int, int]], config: Config | None = None) -> list:
    """Each end's :func:`connect` at once, as workers do (the stage waits for every hello); its
    detector, or the error it raised."""
    from concurrent.futures import ThreadPoolExecutor

    def attempt(end: Connection, size: tuple[int, int]):
        try:
            return connect(end, (config or Config()).model, size)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(ends)) as pool:
        return list(pool.map(attempt, ends, sizes))


def same_detections(got, expected) -> None:
    assert len(got) == len(expected) > 0
    order_got, order_expected = np.lexsort(got.xyxy.T), np.lexsort(expected.xyxy.T)
    assert np.array_equal(got.class_id[order_got], expected.class_id[order_expected])
    assert np.allclose(got.xyxy[order_got], expected.xyxy[order_expected], atol=0.5)
    assert np.allclose(got.confidence[order_got], expected.confidence[order_expected], atol=0.01)


# The protocol, with the real model


def test_two_workers_frames_of_two_sizes_get_the_detections_the_model_gives_here_and_leave_no_segment():
    before = segments()
    big, small_source = highway_frames(100, 200)
    small = cv2.resize(small_source, (480, 270))
    stage, (first, second) = start_stage(2)
    try:
        one, two = connect_all([first, second], [(960, 540), (480, 270)])
        assert one.describe()["shared_inference"] == {"process": "vpipe-inference", "workers": 2}
        assert one.input_size == two.input_size and one.names[2] == "car"
        pending = [one.runner.start([big, big]), two.runner.start([small])]  # in flight together
        assert len(segments() - before) == 2  # one slot each
        got_one, got_two = pending[0](), pending[1]()
        one.close()
        two.close()
        assert segments() == before  # unlinked by the workers
    finally:
        first.close()
        second.close()
        stage.join(30)
    assert stage.exitcode == 0  # ended once both workers had gone
    here = Detector(Config().model, frame_size=(960, 540), pipelined=True)  # the largest frame's model
    assert len(got_one) == 2 and len(got_two) == 1
    same_detections(got_one[0], here(big))
    same_detections(got_one[1], here(big))
    same_detections(got_two[0], here(small))


def test_a_worker_that_goes_mid_round_leaves_the_other_served_and_the_stage_ends_with_the_last():
    frame = highway_frames(100)[0]
    stage, (first, second) = start_stage(2)
    try:
        one, two = connect_all([first, second], [(960, 540)] * 2)
        one.runner.start([frame, frame])  # a round in flight, never waited for
        one.close()
        first.close()  # gone
        for _ in range(3):
            assert len(two.runner.start([frame])()[0]) > 0
        assert stage.is_alive()
        two.close()
    finally:
        second.close()
        stage.join(30)
    assert stage.exitcode == 0


def test_a_stage_that_dies_is_a_clear_error_for_its_workers_not_a_hang():
    before = segments()
    frame = highway_frames(100)[0]
    stage, (end,) = start_stage(1)
    try:
        detector = connect(end, Config().model, (960, 540))
        stage.kill()
        stage.join()
        started = time.monotonic()
        with pytest.raises(StageGone, match=r"^shared inference: the inference process ended before answering"):
            detector.runner.start([frame])()
        assert time.monotonic() - started < 10
        detector.close()
        assert segments() == before
    finally:
        end.close()


def test_a_model_that_does_not_load_is_the_model_error_in_every_worker():
    config = Config()
    config.model.weights = "nosuch.pt"
    stage, ends = start_stage(2, config)
    try:
        for error in connect_all(ends, [(960, 540)] * 2, config):
            assert isinstance(error, ModelError) and "nosuch.pt" in str(error) and error.exit_code == 2
    finally:
        for end in ends:
            end.close()
        stage.join(30)
    assert stage.exitcode == 0


def test_shared_inference_is_what_the_setting_says_and_auto_is_per_worker_on_a_cpu():
    config = Config()
    config.model.device = "cpu"
    assert not shares_inference(config, 2)  # auto on a CPU: a model per worker (docs/performance.md)
    config.model.device = "cuda:0"
    assert shares_inference(config, 2)
    config.model.task = "segment"
    assert not shares_inference(config, 2)  # detect-only
    config.source.shared_inference = True
    assert shares_inference(config, 4) and not shares_inference(config, 1)
    config.source.shared_inference = False
    config.model.task = "detect"
    assert not shares_inference(config, 2)


# The real CLI


def crossings(folder: Path) -> Counter:
    return Counter((c.line, c.direction, c.frame) for c in load_counted(folder / "events.jsonl"))


def summary_of(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_four_cameras_on_two_workers_with_a_shared_stage_count_as_the_clip_alone_event_by_event(tmp_path: Path):
    before = segments()
    alone_out = tmp_path / "alone"
    result = run_vpipe(
        "run", HIGHWAY, "--config", CONFIGS / "traffic.yaml", "--no-video", "--quiet", "--output", alone_out
    )
    assert result.returncode == 0, result.stderr
    expected = crossings(alone_out)
    assert sum(expected.values()) >= 10
    result, out = run_highway_cameras(tmp_path, 4, *SHARED)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    truth = load_truth(GROUND_TRUTH / "highway_ground_truth.yaml")
    for name in ["highway", "highway_2", "highway_3", "highway_4"]:
        folder_summary = summary_of(out / name)
        assert (folder_summary["status"], folder_summary["frames"]) == ("completed", 335)
        assert folder_summary["shared_inference"] == {"process": "vpipe-inference", "workers": 2}
        assert crossings(out / name) == expected, name  # the same events, matched as a multiset
        matched = match_crossings(truth, load_counted(out / name / "events.jsonl"), Tolerance.for_run(30000 / 1001, 1))
        assert not matched.missed and not matched.extra, name
    assert segments() == before


def run_in_background(tmp_path: Path, cameras: int) -> tuple[subprocess.Popen, Path, list[str]]:
    streams = tmp_path / "cameras.streams"
    streams.write_text(f"{HIGHWAY}\n" * cameras)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", streams, *SHARED, "--no-video", "--quiet", "--output", out],
        cwd=REPO,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    names = ["highway", "highway_2", "highway_3", "highway_4"][:cameras]
    deadline = time.monotonic() + 300
    while not all(rows_written(out / name / "counts.csv") >= 5 for name in names):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    return process, out, names


def rows_written(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def children(process: subprocess.Popen) -> tuple[psutil.Process, list[psutil.Process]]:
    """The run's stage (the first process it spawned) and its workers."""
    spawned = [
        child for child in psutil.Process(process.pid).children() if "resource_tracker" not in " ".join(child.cmdline())
    ]
    spawned.sort(key=lambda child: child.create_time())
    return spawned[0], spawned[1:]


def finish(process: subprocess.Popen) -> str:
    try:
        return process.communicate(timeout=120)[1]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.parametrize("to_group", [True, False], ids=["sigint-to-the-group", "sigterm-to-the-parent"])
def test_stopping_a_shared_run_leaves_every_output_interrupted_and_no_shared_memory(tmp_path: Path, to_group: bool):
    before = segments()
    process, out, names = run_in_background(tmp_path, 4)
    if to_group:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    stderr = finish(process)
    assert process.returncode == 0, stderr
    for name in names:
        folder_summary = summary_of(out / name)
        assert folder_summary["status"] == "interrupted"
        assert rows_written(out / name / "counts.csv") == folder_summary["frames"] < 335
    assert segments() == before


def test_a_stage_killed_mid_run_ends_the_workers_with_one_clear_line_and_outputs_finalized(tmp_path: Path):
    before = segments()
    process, out, names = run_in_background(tmp_path, 2)
    stage, _ = children(process)
    stage.kill()
    stderr = finish(process)
    assert process.returncode == 2, stderr
    lines = stderr.splitlines()
    assert lines == [
        "vpipe: error: shared inference: the inference process ended before answering (see its error above, if any)"
    ]
    for name in names:
        folder_summary = summary_of(out / name)
        assert folder_summary["status"] in (
            "failed",
            "interrupted",
        )  # the first to see it failed, the other was stopped
        assert rows_written(out / name / "counts.csv") == folder_summary["frames"] < 335
    assert segments() == before


def test_a_worker_killed_mid_run_does_not_hang_the_stage_and_the_others_are_finalized(tmp_path: Path):
    before = segments()
    process, out, names = run_in_background(tmp_path, 2)
    stage, workers = children(process)
    assert len(workers) == 2
    workers[0].kill()
    stderr = finish(process)  # ends: the stage does not wait on the dead worker
    assert process.returncode != 0 and "worker 1 ended with exit code -9" in stderr, stderr
    assert not stage.is_running()
    assert summary_of(out / names[1])["status"] == "interrupted"  # stopped, and finalized
    time.sleep(1)  # the resource tracker unlinks the dead worker's segments as the run ends
    assert segments() == before
