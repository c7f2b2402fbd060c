"""CLI behaviour: help, one-line errors with exit code 2 and nothing written, clean stop on signals."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import pytest

from pipeline.batch.cli import config_overrides
from pipeline.cli import build_parser, overrides_from_args
from tests.conftest import CONFIGS, REPO, run_vpipe


def test_help_explains_every_flag():
    top = run_vpipe("--help")
    assert top.returncode == 0 and "run" in top.stdout
    result = run_vpipe("run", "--help")
    assert result.returncode == 0
    for flag in (
        "--config",
        "--output",
        "--model",
        "--task",
        "--device",
        "--imgsz",
        "--conf",
        "--classes",
        "--line",
        "--max-frames",
        "--no-video",
        "--quiet",
    ):
        assert flag in result.stdout


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "vpipe"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("vpipe ")


def test_flags_map_onto_config_overrides():
    args = build_parser().parse_args(
        [
            "run",
            "v.mp4",
            "--model",
            "m.pt",
            "--imgsz",
            "320",
            "--classes",
            "car, truck",
            "--inference-threads",
            "1",
            "--line",
            "a:1,2,3,4",
            "--line",
            "b:5,6,7,8",
            "--no-video",
            "--max-frames",
            "9",
            "--output",
            "o",
        ]
    )
    assert overrides_from_args(args) == {
        "source": {"path": "v.mp4", "max_frames": 9},
        "model": {"weights": "m.pt", "imgsz": 320, "classes": ["car", "truck"], "inference_threads": 1},
        "output": {"dir": "o", "video": False},
        "lines": [
            {"name": "a", "start": [1.0, 2.0], "end": [3.0, 4.0]},
            {"name": "b", "start": [5.0, 6.0], "end": [7.0, 8.0]},
        ],
    }


MODEL_FLAGS = (
    ["--backend", "openvino", "--precision", "fp32", "--calibration", "cal/", "--upscale", "--detect-every", "2"],
    {"backend": "openvino", "precision": "fp32", "calibration": "cal/", "upscale": True, "detect_every": 2},
)


@pytest.mark.parametrize("command", [["run", "v.mp4"], ["batch", "videos/*.mp4", "--output", "o"]])
def test_run_and_batch_take_the_same_model_flags(command: list[str]):
    flags, expected = MODEL_FLAGS
    args = build_parser().parse_args([*command, *flags])
    overrides = overrides_from_args(args) if args.command == "run" else config_overrides(args)
    assert overrides["model"] == expected
    no_upscale = build_parser().parse_args([*command, "--no-upscale"])
    overrides = overrides_from_args(no_upscale) if no_upscale.command == "run" else config_overrides(no_upscale)
    assert overrides["model"] == {"upscale": False}  # the default is on: off must reach the config


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_video", "no_such.mp4: no such file or folder"),
        ("corrupt_video", "corrupt.mp4: cannot open video"),
        ("missing_config", "nope.yaml: cannot read config file"),
        ("unknown_key", "bad.yaml: unknown key 'model.imgsize' (did you mean 'imgsz'?)"),
        ("wrong_type", "bad.yaml: lines[0].start[0]: expected a number, got str 'left'"),
        ("line_outside_frame", "bad.yaml: lines[0] (main): point (2000, 330) is outside the 960x540 frame"),
        ("unknown_class", "bad.yaml: model.classes: unknown class 'automobile'"),
        ("bad_line_flag", "--line: expected NAME:x1,y1,x2,y2"),
        ("missing_model", "model 'yolo11x.pt' not found"),
    ],
)
def test_bad_input_gives_one_line_exit_2_and_writes_nothing(tmp_path: Path, highway: Path, case: str, expected: str):
    source, config, extra = highway, None, []
    if case == "missing_video":
        source = tmp_path / "no_such.mp4"
    elif case == "corrupt_video":
        source = write(tmp_path / "corrupt.mp4", b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500)
    elif case == "missing_config":
        config = tmp_path / "nope.yaml"
    elif case == "unknown_key":
        config = write(tmp_path / "bad.yaml", "model:\n  imgsize: 320\n")
    elif case == "wrong_type":
        config = write(tmp_path / "bad.yaml", "lines:\n  - {name: main, start: [left, 1], end: [2, 3]}\n")
    elif case == "line_outside_frame":
        config = write(tmp_path / "bad.yaml", "lines:\n  - {name: main, start: [150, 330], end: [2000, 330]}\n")
    elif case == "unknown_class":
        config = write(tmp_path / "bad.yaml", "model:\n  classes: [car, automobile]\n")
    elif case == "bad_line_flag":
        extra = ["--line", "main:1,2,3"]
    elif case == "missing_model":
        extra = ["--model", "yolo11x.pt"]
    out = tmp_path / "out"
    args = ["run", source, "--output", out, *(["--config", config] if config else []), *extra]
    result = run_vpipe(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists(), "nothing is written for bad input"


@pytest.mark.parametrize(
    ("signum", "rows_first"),
    [(signal.SIGINT, 40), (signal.SIGTERM, 40), (signal.SIGINT, 230)],
    ids=["SIGINT", "SIGTERM", "SIGINT-after-thread-trial"],
)
def test_a_signal_mid_run_leaves_valid_outputs(tmp_path: Path, highway: Path, signum: int, rows_first: int):
    """A signal during the inference-thread trial (its first 192 frames) or after it, when one of
    the two compiled models has won, stops the run cleanly with valid outputs."""
    out = tmp_path / "out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            str(highway),
            "--config",
            str(CONFIGS / "traffic.yaml"),
            "--output",
            str(out),
            "--quiet",
            "--imgsz",
            "320",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    counts = out / "counts.csv"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (
        not counts.exists() or len(counts.read_text().splitlines()) < rows_first + 1
    ):
        time.sleep(0.2)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    rows = list(csv.DictReader(counts.open()))
    assert summary["status"] == "interrupted"
    assert rows_first - 1 <= summary["frames"] < 335  # rows_first rows were written when the signal was sent
    assert len(rows) in (summary["frames"], summary["frames"] + 1)  # the signal may land between two writes
    with av.open(str(out / "annotated.mp4")) as video:
        frames = sum(1 for _ in video.decode(video=0))
    assert abs(frames - summary["frames"]) <= 1


def test_a_run_with_openvino_sends_no_telemetry(tmp_path: Path, highway: Path):
    """``import openvino`` alone sends a usage event and writes an ID file under ``~/intel``; a run
    through the OpenVINO backend must do neither (the ID file is the observable trace)."""
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(highway), "--config", str(CONFIGS / "traffic.yaml"),
         "--backend", "openvino", "--max-frames", "3", "--output", str(tmp_path / "out"), "--quiet"],
        cwd=REPO, env={**os.environ, "HOME": str(home), "YOLO_OFFLINE": "1"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["backend"] == "openvino"
    assert not (home / "intel").exists(), sorted(p.name for p in (home / "intel").iterdir())


def test_the_summary_table_says_how_many_inference_threads_and_why():
    from pipeline.cli import format_summary
    from pipeline.run.summary import RunSummary

    summary = {
        "source": "street.mp4",
        "status": "completed",
        "frames": 480,
        "fps": 23.976,
        "width": 640,
        "height": 360,
        "duration_s": 20.0,
        "processing_fps": 117.0,
        "tracks_total": 40,
        "model": "models/yolo11n.pt",
        "task": "detect",
        "imgsz": 320,
        "backend": "openvino",
        "precision": "int8",
        "device": "cpu",
        "input_size": [256, 320],
        "detect_every": 1,
        "lines": {},
        "zones": {},
        "output_dir": "runs/street",
    }

    def table(fields: dict[str, Any]) -> str:
        return format_summary(RunSummary.from_json({**summary, **fields}))

    timed = {"inference_threads": 1, "inference_threads_trial_fps": {"2": 98.4, "1": 121.2}}
    assert "on cpu with 1 inference thread (timed 2 vs 1: 98 vs 121 FPS), input 320x256" in table(timed)
    assert "on cpu with 4 inference threads, input 320x256" in table({"inference_threads": 4})
    assert "on cpu, input 320x256" in table({"inference_threads": None})
