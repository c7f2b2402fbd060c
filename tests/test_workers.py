"""``--workers N``: the sources of a ``.streams`` list spread over worker processes.

Names, groups and the merged results on exact synthetic lists; the real model on highway.mp4 through
the real CLI for the rest: four copies over two workers count as the clip run alone, event by event,
and as the hand count; folders, overview and store are as with one process; a bad source fails alone;
Ctrl-C and SIGTERM leave every output valid and ``interrupted``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.config import Config, load_config
from pipeline.errors import ConfigError
from pipeline.evaluation import Tolerance, load_counted, load_truth, match_crossings
from pipeline.io.sources.files import open_source, source_name
from pipeline.io.urls import stream_name
from pipeline.run.fleet import GroupResult, SourceGroup, SourcesFailed, write_overview
from pipeline.run.summary import ModelInfo, RunSummary
from pipeline.run.workers import check_workers, worker_count
from tests.conftest import CONFIGS, GROUND_TRUTH, REPO, SAMPLES, run_highway_cameras, run_vpipe

HIGHWAY = SAMPLES / "highway.mp4"


def crossings(folder: Path) -> list[tuple[str, str, int]]:
    """The (line, direction, frame) of each line crossing in ``folder``'s events.jsonl, in order."""
    return [(c.line, c.direction, c.frame) for c in load_counted(folder / "events.jsonl")]


def summary_of(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


# Names and groups


def test_names_are_unique_across_the_whole_list_in_list_order_whatever_group_each_lands_in():
    whole = SourceGroup.whole(["a/clip.mp4", "b/clip.mp4", "cam.mp4", "c/clip.mp4", "clip_2.mp4"])
    assert whole.names == ["clip", "clip_2", "cam", "clip_3", "clip_2_2"]  # a clip named clip_2 is not clip_2's
    groups = whole.split(2)
    assert [g.positions for g in groups] == [[0, 2, 4], [1, 3]]  # round-robin
    assert [g.names for g in groups] == [["clip", "cam", "clip_2_2"], ["clip_2", "clip_3"]]
    assert [g.specs for g in groups] == [["a/clip.mp4", "cam.mp4", "clip_2.mp4"], ["b/clip.mp4", "c/clip.mp4"]]
    assert all(g.list_size == 5 for g in groups)  # each still writes into a subfolder of the list's
    assert [g.positions for g in whole.split(9)] == [[0], [1], [2], [3], [4]]  # never an empty group


def test_a_source_is_named_before_it_opens_as_it_is_once_open(tmp_path: Path):
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0001.jpg"), np.zeros((32, 48, 3), np.uint8))
    specs = [str(HIGHWAY), str(frames), str(frames / "*.jpg"), str(frames / "0001.jpg")]
    opened = []
    for spec in specs:
        source = open_source(spec)
        opened.append(source.name)
        source.close()
    assert [source_name(spec) for spec in specs] == opened == ["highway", "frames", "frames", "frames"]
    url = "rtsp://user:secret@cam.local:554/live?x=1"
    assert source_name(url) == stream_name(url) == "cam.local_554_live" and source_name("3") == "camera3"


def test_the_workers_are_as_many_as_asked_never_more_than_sources_and_auto_is_one_per_two_cores():
    assert [worker_count(n, 4) for n in (1, 2, 4, 9)] == [1, 2, 4, 4]
    assert [worker_count("auto", 20, cpus=c) for c in (1, 2, 3, 16)] == [1, 1, 1, 8]
    assert worker_count("auto", 3, cpus=16) == 3


def test_a_live_view_with_several_workers_is_refused_naming_the_key(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("source:\n  workers: 2\n")
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"run.yaml: source.workers: a live view \(--serve, --show\) needs"):
        check_workers(config, 4, live_view=True)
    assert check_workers(config, 1, live_view=True) == 1  # one source: one process, the view works
    assert check_workers(config, 4, live_view=False) == 2
    path.write_text("source:\n  workers: 0\n")
    with pytest.raises(ConfigError, match=r"run.yaml: source.workers: expected an integer from 1 to 256, or auto"):
        load_config(path)


def summary(source: str, status: str) -> RunSummary:
    model = ModelInfo("m.pt", "detect", "cpu", 640, "openvino", "fp32", [384, 640], 1)
    return RunSummary(source, 30.0, 64, 48, model, 1, f"out/{source}", status=status)


def test_merged_results_are_in_list_order_and_the_overview_lists_every_source(tmp_path: Path):
    specs = ["a.mp4", "bad.mp4", "c.mp4", "rtsp://cam/x"]
    first = GroupResult(
        summaries=[(2, summary("c.mp4", "completed")), (0, summary("a.mp4", "completed"))],
        entries={0: {"source": "a.mp4", "status": "completed"}, 2: {"source": "c.mp4", "status": "completed"}},
    )
    second = GroupResult(failed={1: "bad.mp4: no such file or folder"}, pending=[3])
    merged = GroupResult.merge([second, first])
    assert [position for position, _ in merged.summaries] == [0, 2]
    write_overview(tmp_path, specs, merged, "run1")
    overview = summary_of(tmp_path)
    assert [(s["source"], s["status"]) for s in overview["sources"]] == [
        ("a.mp4", "completed"), ("bad.mp4", "failed"), ("c.mp4", "completed"), ("rtsp://cam/x", "never_connected")
    ]  # fmt: skip
    assert overview["sources_failed"] == 2 and overview["run_id"] == "run1"
    with pytest.raises(SourcesFailed) as failed:
        merged.outcome(specs)
    assert str(failed.value) == "bad.mp4: no such file or folder; rtsp://cam/x: never connected"
    assert [s.source for s in failed.value.summaries] == ["a.mp4", "c.mp4"] and failed.value.exit_code == 3


def test_the_workers_setting_does_not_change_what_a_run_folder_is_of():
    from pipeline.io.outputs.run_folder import RUN_CONTROL_KEYS

    assert "source.workers" in RUN_CONTROL_KEYS  # a run continues in its folder with another --workers
    one, two = Config(), Config()
    two.source.workers = 2
    assert one.digest(RUN_CONTROL_KEYS) == two.digest(RUN_CONTROL_KEYS)


def test_an_export_another_process_is_making_is_waited_for_and_reused_not_made_again(tmp_path: Path):
    import fcntl
    import threading

    from pipeline.models.export import export_path, exported_model

    weights = tmp_path / "tiny.pt"
    weights.write_bytes(b"not a model: exporting it would fail")
    target = export_path(weights, "openvino", (384, 640))
    target.parent.parent.mkdir(parents=True)
    got: list[Path] = []
    with (target.parent.parent / f"{target.parent.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a worker exporting it holds it
        waiter = threading.Thread(target=lambda: got.append(exported_model(weights, "openvino", (384, 640))))
        waiter.start()
        waiter.join(timeout=1.0)
        assert waiter.is_alive() and not got  # waits for the lock, does not start an export of its own
        target.mkdir(parents=True)  # the other process's export, moved into place
        (target / "tiny.xml").write_text("exported")
    waiter.join(timeout=10)
    assert got == [target] and (target / "tiny.xml").read_text() == "exported"


# The real model through the CLI


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """highway.mp4 run alone, in one process."""
    out = tmp_path_factory.mktemp("alone") / "highway"
    result = run_vpipe("run", HIGHWAY, "--config", CONFIGS / "traffic.yaml", "--no-video", "--quiet", "--output", out)
    assert result.returncode == 0, result.stderr
    return out


def test_four_cameras_on_two_workers_count_as_the_clip_alone_event_by_event(alone: Path, tmp_path: Path):
    result, out = run_highway_cameras(tmp_path, 4, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""  # --quiet: no bar, no notes, no table
    names = ["highway", "highway_2", "highway_3", "highway_4"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == names
    expected = crossings(alone)
    assert len(expected) >= 10
    truth = load_truth(GROUND_TRUTH / "highway_ground_truth.yaml")
    run_ids = set()
    for name in names:
        folder_summary = summary_of(out / name)
        assert (folder_summary["status"], folder_summary["frames"]) == ("completed", 335)
        assert folder_summary["inference_threads"] == max(1, len(os.sched_getaffinity(0)) // 2)  # half the cores each
        run_ids.add(folder_summary["run_id"])
        assert crossings(out / name) == expected, name
        matched = match_crossings(truth, load_counted(out / name / "events.jsonl"), Tolerance.for_run(30000 / 1001, 1))
        assert not matched.missed and not matched.extra, name
    assert len(run_ids) == 1  # one run, as with one process
    overview = summary_of(out)
    assert [(s["source"], s["status"], Path(s["output_dir"]).name) for s in overview["sources"]] == [
        (str(HIGHWAY), "completed", name) for name in names
    ]
    assert overview["sources_failed"] == 0 and overview["run_id"] in run_ids
    with closing(sqlite3.connect(out / "vpipe.sqlite")) as db:  # two processes wrote it at once
        rows = db.execute(
            "SELECT camera, name, direction, frame_index FROM events WHERE event = 'line_crossing' ORDER BY camera, seq"
        ).fetchall()
    assert rows == [(name, line, direction, frame) for name in names for line, direction, frame in expected]


def test_one_progress_bar_counts_every_workers_frames_of_the_total_and_the_tables_follow_list_order(tmp_path: Path):
    streams = tmp_path / "cameras.streams"
    streams.write_text(f"{HIGHWAY}\n" * 2)
    out = tmp_path / "out"
    result = run_vpipe("run", streams, "--workers", "2", "--max-frames", "20", "--no-video", "--output", out)
    assert result.returncode == 0, result.stderr
    states = [state.strip() for state in result.stderr.replace("\r", "\n").splitlines() if "frame" in state]
    assert "100%" in states[-1] and "40/40" in states[-1], states[-3:]  # both workers' frames, of both's total
    tables = [line for line in result.stdout.splitlines() if line.startswith(("completed", "outputs"))]
    assert [line.split(" at ")[0] for line in tables[::2]] == ["completed: 20 frames (0.7 s of video)"] * 2
    assert tables[1::2] == [f"outputs: {out / 'highway'}/", f"outputs: {out / 'highway_2'}/"]


def test_a_bad_source_fails_alone_and_the_others_run(tmp_path: Path):
    missing = tmp_path / "missing.mp4"
    streams = tmp_path / "cameras.streams"
    streams.write_text(f"{HIGHWAY}\n{missing}\n{HIGHWAY}\n")  # the second worker gets the bad one only
    out = tmp_path / "out"
    result = run_vpipe("run", streams, "--workers", "2", "--max-frames", "20", "--no-video", "--quiet", "--output", out)
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines() == [f"vpipe: error: {missing}: no such file or folder"]
    overview = summary_of(out)
    assert [(s["source"], s["status"]) for s in overview["sources"]] == [
        (str(HIGHWAY), "completed"), (str(missing), "failed"), (str(HIGHWAY), "completed")
    ]  # fmt: skip
    assert overview["sources_failed"] == 1
    assert [(summary_of(out / n)["status"], summary_of(out / n)["frames"]) for n in ("highway", "highway_2")] == [
        ("completed", 20),
        ("completed", 20),
    ]


def test_every_source_missing_is_one_line_exit_2_and_nothing_written(tmp_path: Path):
    streams = tmp_path / "cameras.streams"
    streams.write_text(f"{tmp_path / 'a.mp4'}\n{tmp_path / 'b.mp4'}\n")
    result = run_vpipe("run", streams, "--workers", "2", "--quiet", "--output", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"vpipe: error: {tmp_path / 'a.mp4'}: no such file or folder; {tmp_path / 'b.mp4'}: no such file or folder"
    ]
    assert not (tmp_path / "out").exists()


def test_a_model_error_in_the_workers_is_one_line_exit_2(tmp_path: Path):
    streams = tmp_path / "cameras.streams"
    streams.write_text(f"{HIGHWAY}\n" * 2)
    result = run_vpipe("run", streams, "--workers", "2", "--model", "nosuch.pt", "--quiet", "--output", tmp_path / "o")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vpipe: error: ") and "nosuch.pt" in lines[0], result.stderr


def test_an_output_error_in_one_worker_stops_the_others_and_is_one_line(tmp_path: Path):
    streams = tmp_path / "cameras.streams"
    streams.write_text(f"{HIGHWAY}\n" * 2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "highway_2").write_text("a file where the second camera's folder goes")
    result = run_vpipe("run", streams, "--workers", "2", "--no-video", "--quiet", "--output", out)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"vpipe: error: cannot write outputs to {out / 'highway_2'}: it is not a folder"
    ]
    assert not (out / "summary.json").exists()  # no overview of a run that stopped on an error
    # The first worker was stopped, not left to run the clip to its end (if it had started it at all).
    first = out / "highway" / "summary.json"
    assert not first.exists() or json.loads(first.read_text())["status"] == "interrupted"


def test_serve_with_several_workers_is_refused_in_one_line(tmp_path: Path):
    streams = tmp_path / "cameras.streams"
    streams.write_text(f"{HIGHWAY}\n" * 2)
    result = run_vpipe("run", streams, "--workers", "2", "--serve", "0", "--output", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "vpipe: error: --workers: a live view (--serve, --show) needs every source in one process (1)"
    ]
    assert not (tmp_path / "out").exists()


def rows_written(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


@pytest.mark.parametrize("to_group", [True, False], ids=["sigint-to-the-group", "sigterm-to-the-parent"])
def test_stopping_a_run_on_two_workers_leaves_every_output_valid_and_interrupted(tmp_path: Path, to_group: bool):
    streams = tmp_path / "cameras.streams"
    streams.write_text(f"{HIGHWAY}\n" * 4)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", streams, "--workers", "2", "--quiet", "--output", out],
        cwd=REPO,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a Ctrl-C in a terminal reaches all of it
    )
    names = ["highway", "highway_2", "highway_3", "highway_4"]
    try:
        deadline = time.monotonic() + 300
        while not all(rows_written(out / name / "counts.csv") >= 5 for name in names):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.2)
        if to_group:
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGTERM)  # the parent alone, as `docker stop` does
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stderr
    overview = summary_of(out)
    # A worker that started late on a loaded machine leaves the other's cameras time to end first:
    # those are completed, whole; every camera still running is interrupted, and at least the one
    # that had written only 5 rows was.
    statuses = [s["status"] for s in overview["sources"]]
    assert set(statuses) <= {"completed", "interrupted"} and "interrupted" in statuses, statuses
    for name, status in zip(names, statuses, strict=True):
        folder_summary = summary_of(out / name)
        assert folder_summary["status"] == status
        frames = folder_summary["frames"]
        assert 5 <= frames < 335 if status == "interrupted" else frames == 335
        assert rows_written(out / name / "counts.csv") == frames  # every frame counted was written, whole
        assert all(json.loads(line) for line in (out / name / "events.jsonl").read_text().splitlines())
        with av_open(out / name / "annotated.mp4") as video:
            assert video.streams.video[0].frames == frames or sum(1 for _ in video.decode(video=0)) == frames


def av_open(path: Path):
    import av

    return av.open(str(path))
