"""Deployment (issue 24): the systemd unit and the Dockerfile hold up as far as this machine can check
them without systemd or a Docker daemon, and ``output.keep_video`` drops old annotated video while every
count stays (a real run, restarted)."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.errors import OutputError, PipelineError
from pipeline.io.outputs.folders import FolderTaken
from tests.conftest import CONFIGS, REPO, run_vpipe

UNIT = REPO / "deploy" / "vpipe@.service"
DOCKERFILE = REPO / "Dockerfile"


def run_help() -> str:
    result = subprocess.run([sys.executable, "-m", "pipeline", "run", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def flags_of(arguments: list[str]) -> list[str]:
    return [argument for argument in arguments if argument.startswith("--")]


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_restarts_but_not_on_bad_input_or_a_taken_folder():
    service = unit()["Service"]
    assert service["Restart"] == "always"
    prevented = {int(code) for code in service["RestartPreventExitStatus"].split()}
    assert prevented == {PipelineError.exit_code, FolderTaken.exit_code} == {2, 4}
    assert OutputError.exit_code == 2  # an output error is bad input, not a taken folder
    assert service["KillSignal"] == "SIGTERM" and service["User"] != "root"


def test_the_units_command_is_vpipe_run_with_real_flags():
    command = shlex.split(unit()["Service"]["ExecStart"])
    assert command[0].endswith("/bin/vpipe") and command[1] == "run"
    help_text = run_help()
    for flag in flags_of(command):
        assert re.search(rf"\s{re.escape(flag)}\b", help_text), f"{flag} is not a vpipe run flag"
    assert "--serve" in command  # /health for supervisors


def test_systemd_accepts_the_unit(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "needs systemd-analyze (Debian: systemd)"
    vpipe = Path(sys.executable).with_name("vpipe")
    assert vpipe.exists()
    instance = tmp_path / "vpipe@gate.service"  # the command where this machine has it
    instance.write_text(UNIT.read_text().replace("/opt/vpipe/.venv/bin/vpipe", str(vpipe)))
    result = subprocess.run([analyze, "verify", str(instance)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr  # an unknown key is a warning


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_copies_what_is_there_and_runs_vpipe_offline_as_a_user():
    steps = dockerfile()
    copied = [source for op, args in steps if op == "COPY" for source in args.split()[:-1]]
    assert copied and all((REPO / source).exists() for source in copied), copied
    assert any(source.rstrip("/") == "models" for source in copied)  # the weights are in the image
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "models/.vpipe-cache" in ignored and "models" not in ignored
    assert [args for op, args in steps if op == "USER"] == ["vpipe"]
    env = " ".join(args for op, args in steps if op == "ENV")
    assert "YOLO_OFFLINE=1" in env
    entry = json.loads(next(args for op, args in steps if op == "ENTRYPOINT"))
    command = json.loads(next(args for op, args in steps if op == "CMD"))
    assert entry == ["vpipe"] and command[0] == "run"
    help_text = run_help()
    for flag in flags_of(command):
        assert re.search(rf"\s{re.escape(flag)}\b", help_text), f"{flag} is not a vpipe run flag"
    port = command[command.index("--serve") + 1]
    assert [args for op, args in steps if op == "EXPOSE"] == [port]
    assert [args for op, args in steps if op == "VOLUME"] == ["/data"]
    assert all(path.startswith("/data/") for path in (command[1], command[command.index("--output") + 1]))
    health = next(args for op, args in steps if op == "HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/health" in health


def test_keep_video_drops_old_video_segments_and_never_a_count(tmp_path: Path, highway: Path):
    """A run of 2 s segments, then the same run continued with ``output.keep_video: 1``: its restart
    keeps the folder (keep_video is not the run's identity), deletes the earlier video segments and
    nothing else; every count, event, interval row and stored event is still there."""
    settings = yaml.safe_load((CONFIGS / "traffic.yaml").read_text())
    plain, keeping = tmp_path / "plain.yaml", tmp_path / "keeping.yaml"
    plain.write_text(yaml.safe_dump(settings | {"output": {"interval": "2s", "rotate": "2s"}}))
    keeping.write_text(yaml.safe_dump(settings | {"output": {"interval": "2s", "rotate": "2s", "keep_video": 1}}))
    out = tmp_path / "out"
    common = ("run", highway, "--output", out, "--quiet", "--imgsz", "320")
    first = run_vpipe(*common, "--config", plain, "--max-frames", "90")
    assert first.returncode == 0, first.stderr
    assert sorted(path.name for path in out.glob("annotated*.mp4")) == ["annotated.0001.mp4", "annotated.mp4"]
    kept = {
        path.name: path.read_bytes()
        for path in out.iterdir()
        if re.match(r"(counts|events).*\.(csv|jsonl)$", path.name)
    }
    first_intervals = (out / "intervals.csv").read_text()

    second = run_vpipe(*common, "--config", keeping, "--max-frames", "150")
    assert second.returncode == 0, second.stderr
    assert sorted(path.name for path in out.glob("annotated*.mp4")) == ["annotated.0002.mp4"]
    for name, content in kept.items():
        assert (out / name).read_bytes() == content, f"{name} changed"
    assert (out / "intervals.csv").read_text().startswith(first_intervals)
    events = [line for path in out.glob("events*.jsonl") for line in path.read_text().splitlines()]
    assert sum(1 for line in events if json.loads(line)["event"] == "line_crossing") > 0
    with sqlite3.connect(out / "vpipe.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == len(events)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["segments"]) == 2  # continued, not refused
