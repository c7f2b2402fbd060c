"""One YAML library both ways: ``vpipe run`` reads a config, and ``vpipe edit`` writes it back, with
YAML 1.2's meanings (``yes`` and ``on`` are strings, ``010`` is ten), and both refuse the same files
with the same one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.editor.frames import FrameGrabber
from pipeline.editor.server import EditorServer
from pipeline.editor.session import ConfigEditor
from tests.conftest import run_vpipe
from tests.test_editor_config import request
from tests.test_faults import one_line_error

SCALARS = """\
source:
  max_frames: 010        # ten in YAML 1.2 (eight in YAML 1.1)
model:
  imgsz: 320
  detect_every: 0x10     # sixteen
tracker:
  track_buffer_s: 1_000  # a thousand seconds
lines:
  - name: yes            # a string in YAML 1.2 (true in YAML 1.1)
    start: [100, 300]
    end: [800, 300]
  - name: on
    start: [50, 100]
    end: [50, 400]
"""


def run_summary(highway: Path, config: Path, out: Path) -> dict:
    result = run_vpipe("run", highway, "--config", config, "--output", out, "--no-video", "--quiet")
    assert result.returncode == 0, result.stderr
    return json.loads((out / "summary.json").read_text())


def test_yaml_1_2_scalars_mean_the_same_to_vpipe_run_before_and_after_the_editor_saves(tmp_path: Path, highway: Path):
    config = tmp_path / "site.yaml"
    config.write_text(SCALARS)
    before = run_summary(highway, config, tmp_path / "before")
    assert before["frames"] == 10
    assert before["detect_every"] == 16
    assert before["tracker"]["track_buffer_frames"] == round(1000 * before["tracker"]["fps"])
    assert list(before["lines"]) == ["yes", "on"]

    # The page keeps both lines and adds two whose names YAML 1.1 and 1.2 read differently.
    with EditorServer(ConfigEditor(config, 960, 540), FrameGrabber(str(highway)), port=0) as server:
        page = json.loads(request(server.url + "api/state")[1])
        page["lines"] += [
            {"name": "no", "start": [100, 200], "end": [800, 200], "src": None},
            {"name": "010", "start": [100, 400], "end": [800, 400], "src": None},
        ]
        body = json.dumps({key: page[key] for key in ("coordinates", "lines", "zones", "slots")}).encode()
        status, answer = request(server.url + "api/save", body, {"Content-Type": "application/json"})
    assert status == 200, answer

    after = run_summary(highway, config, tmp_path / "after")
    assert list(after["lines"]) == ["yes", "on", "no", "010"]
    assert (after["frames"], after["detect_every"], after["tracker"]) == (10, 16, before["tracker"])


def test_yes_no_on_and_off_are_not_booleans(tmp_path: Path, highway: Path):
    config = tmp_path / "site.yaml"
    config.write_text("output:\n  video: off\n")
    result = run_vpipe("run", highway, "--config", config, "--output", tmp_path / "out")
    one_line_error(result, f"{config}: output.video: expected true or false, got str 'off'")


LAUGHS = "".join(
    f"    - &{name} [{', '.join([f'*{previous}' if previous else 'lol'] * 10)}]\n"
    for previous, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)
"""Nine anchors, each ten of the one before: the last stands for a billion strings."""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model:\n  conf: 0.2\n  conf: 0.3\n", "duplicate key 'conf' at line 3, column 3"),
        (
            "source:\n  path: !!python/object/apply:os.system [echo hi]\n",
            "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not supported at line 2, column 9",
        ),
        ("model:\n  weights: !custom yolo11n.pt\n", "YAML tag '!custom' is not supported at line 2, column 12"),
        (
            f"model:\n  classes:\n{LAUGHS}source:\n  start_time: *i\n",
            "YAML anchors and aliases are not supported (&a) at line 3, column 7",
        ),
        ("lines: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 50 levels deep at line 1, column 57"),
    ],
    ids=["duplicate key", "python tag", "local tag", "billion laughs", "deep nesting"],
)
def test_vpipe_run_and_vpipe_edit_refuse_the_same_yaml_with_the_same_line(
    tmp_path: Path, highway: Path, text: str, expected: str
):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    run = run_vpipe("run", highway, "--config", config, "--output", tmp_path / "out", timeout=300)
    one_line_error(run, f"vpipe: error: {config}: {expected}")
    edit = run_vpipe("edit", highway, "--config", config, "--port", "0", timeout=300)
    assert (edit.returncode, edit.stderr) == (run.returncode, run.stderr)
    assert not (tmp_path / "out").exists()
