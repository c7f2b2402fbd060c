"""Faults in what a user configures, each through the real CLI: numbers that are not finite or far out
of range, a config file too large to parse, more geometry than a frame holds, a secret query value in
an error line, a model path that is not there; and a warning logged while the progress bar is drawn.
The bar for a bad config: exit code 2, one line on stderr naming the file (or flag) and the key, no
traceback."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from pipeline.config.geometry import MAX_LANES, MAX_POLYGON_POINTS, MAX_SLOTS, MAX_ZONES
from tests.conftest import SAMPLES, run_vpipe
from tests.test_faults import one_line_error
from tests.test_faults_live import write_frames
from tests.test_live_end_to_end import free_port

IMAGES = SAMPLES / "pklot_pucpr"
"""An image folder (1280x720): ``source.fps`` applies to it."""


def write_config(tmp_path: Path, config: dict | str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


# --- 7. numbers bounded and finite -----------------------------------------------------------------

SPEED_WITH_NAN = """
speed:
  image_points: [[0, 0], [100, 0], [100, 100], [0, 100]]
  world_points: [[0, 0], [.nan, 0], [10, 10], [0, 10]]
"""


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tracker:\n  track_buffer_s: .inf\n", "tracker.track_buffer_s"),
        ("source:\n  fps: .inf\n", "source.fps"),
        (SPEED_WITH_NAN, "speed.world_points[1][0]"),
        ("source:\n  fps: 0.0001\n", "source.fps"),  # rounds to a frame rate of 0
        ("tracker:\n  track_buffer_s: 1.0e+300\n", "tracker.track_buffer_s"),  # times the fps: inf frames
        ("output:\n  video_width: 8\n", "output.video_width"),
    ],
    ids=["track_buffer_s inf", "fps inf", "world point nan", "fps 0.0001", "track_buffer_s 1e300", "video_width 8"],
)
def test_a_number_out_of_bounds_in_a_config_is_one_line(tmp_path: Path, text: str, key: str):
    config = write_config(tmp_path, text)
    result = run_vpipe("run", IMAGES, "--config", config, "--output", tmp_path / "out", "--no-video")
    one_line_error(result, f"{config}: {key}: expected")
    assert not (tmp_path / "out").exists()


def test_a_number_flag_that_is_not_finite_is_one_line(tmp_path: Path):
    result = run_vpipe("run", IMAGES, "--sample-every", "inf", "--output", tmp_path / "out", "--no-video")
    line = one_line_error(result, "vpipe: error: --sample-every: expected")
    assert "inf" in line


def test_a_config_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path):
    # Invalid YAML at the top: parsing it would report a syntax error instead.
    config = write_config(tmp_path, "lines: [\n" + "# padding\n" * 110_000)
    assert config.stat().st_size > 1_000_000
    result = run_vpipe("run", IMAGES, "--config", config, "--output", tmp_path / "out")
    one_line_error(result, f"vpipe: error: {config}: config file larger than 1 MB")


def square(x: float, y: float, side: float = 10) -> list[list[float]]:
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side]]


def circle(points: int) -> list[list[float]]:
    return [
        [400 + 200 * math.cos(2 * math.pi * i / points), 300 + 200 * math.sin(2 * math.pi * i / points)]
        for i in range(points)
    ]


def geometry_cases(tmp_path: Path) -> dict[str, tuple[dict, str]]:
    """Each: a config one over a geometry limit, and the file and key its error names."""
    config = tmp_path / "config.yaml"
    slots_file = tmp_path / "slots.yaml"
    slots = [{"name": f"s{i}", "polygon": square(20 * (i % 60), 30 * (i // 60))} for i in range(MAX_SLOTS + 1)]
    slots_file.write_text(yaml.safe_dump(slots))
    zones = [{"name": f"z{i}", "polygon": square(12 * i, 10)} for i in range(MAX_ZONES + 1)]
    lanes = [{"name": f"l{i}", "start": [10 * i, 100], "end": [10 * i + 5, 100]} for i in range(MAX_LANES + 1)]
    return {
        "zones": ({"zones": zones}, f"{config}: zones"),
        "polygon points": (
            {"zones": [{"name": "z", "polygon": circle(MAX_POLYGON_POINTS + 1)}]},
            f"{config}: zones[0].polygon",
        ),
        "lanes": (
            {"lines": [{"name": "a", "start": [0, 100], "end": [1200, 100], "lanes": lanes}]},
            f"{config}: lines[0].lanes",
        ),
        "slots_file": ({"parking": {"slots_file": slots_file.name}}, f"{slots_file}: slots"),
    }


@pytest.mark.parametrize("case", ["zones", "polygon points", "lanes", "slots_file"])
def test_more_geometry_than_a_frame_holds_is_one_line(tmp_path: Path, case: str):
    config, where = geometry_cases(tmp_path)[case]
    path = write_config(tmp_path, config)
    result = run_vpipe("run", IMAGES, "--config", path, "--output", tmp_path / "out", "--no-video", "--max-frames", "1")
    one_line_error(result, f"vpipe: error: {where}: expected at most")


# --- 13. small ones --------------------------------------------------------------------------------


def test_a_masked_query_value_keeps_the_separator_after_it(tmp_path: Path):
    url = f"http://127.0.0.1:{free_port()}/x?token=abc"  # nothing listens there
    result = run_vpipe("run", url, "--max-reconnects", "0", "--output", tmp_path / "out")
    line = one_line_error(result, "cannot connect")
    assert line.startswith(f"vpipe: error: {url.replace('abc', '***')}: cannot connect"), line


@pytest.mark.parametrize("model", ["models/nonexistent/x.pt", "models//nonexistent/./x.pt"])
def test_a_missing_model_path_names_the_one_place_looked_at(tmp_path: Path, highway: Path, model: str):
    result = run_vpipe("run", highway, "--model", model, "--output", tmp_path / "out")
    one_line_error(result, f"model '{model}' not found (looked at models/nonexistent/x.pt);")


def screen_lines(text: str) -> list[str]:
    """The lines a terminal shows for ``text``: a carriage return goes back to the start of the line,
    and what follows overwrites what was there."""
    lines = []
    for raw in text.split("\n"):
        cells: list[str] = []
        column = 0
        for char in raw:
            if char == "\r":
                column = 0
                continue
            cells[column : column + 1] = [char]
            column += 1
        lines.append("".join(cells).rstrip())
    return lines


def test_a_warning_logged_under_the_progress_bar_starts_its_own_line(tmp_path: Path, highway: Path):
    folder = tmp_path / "frames"
    write_frames(folder, highway, 40)
    # Read well after the bar is drawn: the reader runs at most a few frames ahead of the bar's loop.
    (folder / "0030.jpg").write_bytes(b"\xff\xd8 cut short")
    result = run_vpipe("run", folder, "--output", tmp_path / "out", "--imgsz", "320", "--no-video")  # not --quiet
    assert result.returncode == 0, result.stderr
    shown = screen_lines(result.stderr)
    assert any("/40 [" in line for line in shown), result.stderr  # the bar was drawn
    warnings = [line for line in shown if "0030.jpg: cannot read image" in line]
    assert len(warnings) == 1, result.stderr
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ WARNING pipeline\.", warnings[0]), warnings[0]


def test_vpipe_slots_writes_no_file_that_vpipe_run_would_refuse(tmp_path: Path):
    """A grid of more slots than a config may hold is one line, exit 2, and no file."""
    image = SAMPLES / "pklot_pucpr" / "2012-09-16_06_22_55.jpg"
    out = tmp_path / "slots.yaml"
    result = run_vpipe("slots", image, "--grid", "25x21", "--output", out)  # 525 slots of 61 x 29 px
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"525 slots, more than the {MAX_SLOTS}" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() and not out.with_suffix(".png").exists()
