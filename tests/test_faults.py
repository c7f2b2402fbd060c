"""Faults a user will hit, each through the real CLI: unwritable outputs and a full disk, odd
passwords, rerunning into a used folder, degenerate geometry, a config that is not text, and the
small usage mistakes. The bar for each: exit code 2, one line on stderr, no traceback, no secret
printed, and whatever was written before the fault still readable."""

from __future__ import annotations

import csv
import json
import resource
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.errors import OutputError
from pipeline.io.outputs.sinks import CountsCsvSink, H264VideoSink, JsonlSink, playable_length
from tests.conftest import run_vpipe

MISSING_MODEL = "/nonexistent/weights.pt"
"""Passed where the output must be refused before the model loads: loading it would fail differently."""


def one_line_error(result, expected: str, code: int = 2) -> str:
    """The single stderr line of a run that failed on bad input (exit ``code``), checked for the bar."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vpipe") and expected in lines[0], lines[0]
    return lines[0]


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


# --- 2. unwritable outputs, a full disk ----------------------------------------------------------------


def unwritable_outputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    return {
        "existing file": (a_file, "it is not a folder"),
        "path under a file": (a_file / "out", f"{a_file} is not a folder"),
        "under /proc": (Path("/proc/vpipe-out"), "/proc is not writable"),
        "under /sys": (Path("/sys/vpipe-out"), "/sys is not writable"),
        "/dev/null": (Path("/dev/null"), "it is not a folder"),
    }


CASES = ["existing file", "path under a file", "under /proc", "under /sys", "/dev/null"]


@pytest.mark.parametrize("case", CASES)
def test_unwritable_run_output_is_refused_before_the_model_loads(tmp_path: Path, highway: Path, case: str):
    output, expected = unwritable_outputs(tmp_path)[case]
    result = run_vpipe("run", highway, "--output", output, "--model", MISSING_MODEL, "--max-frames", "2")
    one_line_error(result, f"cannot write outputs to {output}: {expected}")


@pytest.mark.parametrize("case", CASES)
def test_unwritable_batch_output_is_refused(tmp_path: Path, highway: Path, case: str):
    output, expected = unwritable_outputs(tmp_path)[case]
    result = run_vpipe("batch", highway, "--output", output, "--max-frames", "2")
    one_line_error(result, f"cannot write outputs to {output}: {expected}")


@pytest.mark.parametrize("case", ["existing folder", "under /proc", "under /sys", "path under a file"])
def test_unwritable_slots_output_is_refused(tmp_path: Path, highway: Path, case: str):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    output, expected = {
        "existing folder": (tmp_path, "it is not a regular file"),
        "under /proc": (Path("/proc/slots.yaml"), "/proc is not writable"),
        "under /sys": (Path("/sys/slots.yaml"), "/sys is not writable"),
        "path under a file": (a_file / "slots.yaml", f"{a_file}: it is not a folder"),
    }[case]
    one_line_error(run_vpipe("slots", highway, "--grid", "2x2", "--output", output), expected)


def test_a_full_disk_mid_run_stops_cleanly_with_valid_outputs(tmp_path: Path, highway: Path):
    """The kernel refuses to grow any file past 1 MB (RLIMIT_FSIZE: EFBIG, as a full disk's ENOSPC, an
    OSError on write): the video reaches it mid-run."""
    out = tmp_path / "out"

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    result = run_vpipe("run", highway, "-o", out, "--max-frames", "250", "--quiet", preexec_fn=limit_file_size)
    line = one_line_error(result, f"cannot write {out / 'annotated.mp4'}: File too large")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["error"] == line.removeprefix("vpipe: error: ")
    assert 0 < summary["frames"] < 250
    frames = decoded_frames(out / "annotated.mp4")  # decodes to its end without an error
    assert 0 < frames <= summary["frames"]
    with (out / "counts.csv").open(newline="") as file:
        rows = list(csv.reader(file))
    assert [int(row[0]) for row in rows[1:]] == list(range(summary["frames"]))
    assert {len(row) for row in rows} == {len(rows[0])}


def test_sinks_turn_a_full_disk_into_one_output_error():
    """/dev/full fails every write with ENOSPC, as a full disk does."""
    with pytest.raises(OutputError, match="cannot write /dev/full: No space left on device"):
        CountsCsvSink("/dev/full", ["frame_index"])
    events = JsonlSink("/dev/full")
    with pytest.raises(OutputError, match="cannot write /dev/full: No space left on device"):
        events.write([{"event": "line_crossed"}])
    events.close()
    video = H264VideoSink("/dev/full", 64, 48, 25)
    with pytest.raises(OutputError, match="cannot write /dev/full: No space left on device"):
        for _ in range(100):  # its first fragment is written when the second keyframe (frame 50) comes
            video.write(np.zeros((48, 64, 3), np.uint8))
    video.close()


def test_a_video_cut_mid_fragment_is_trimmed_to_its_whole_fragments(tmp_path: Path):
    """What a write failure leaves (a file ending part-way through a box) is cut back to the last whole
    fragment. 10 s of a noise pattern moving 1 px a frame (no scene cuts) at 25 fps, a keyframe (a
    new fragment) every 2 s: 5 fragments of 50 frames and about equal size, so a third of the file
    holds one whole fragment, half of it two, and all but its last 10 bytes (the fragment index at
    the end) all five."""
    path = tmp_path / "v.mp4"
    pattern = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    with H264VideoSink(path, 64, 48, 25) as sink:
        for index in range(250):
            sink.write(np.roll(pattern, index, axis=1))
    whole = path.read_bytes()
    assert playable_length(path) == len(whole)
    for cut, expected_frames in ((len(whole) // 3, 50), (len(whole) // 2, 100), (len(whole) - 10, 250)):
        path.write_bytes(whole[:cut])
        path.write_bytes(whole[: playable_length(path)])
        assert decoded_frames(path) == expected_frames


# --- 3. credentials --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("rtsp://admin:p@ssW0rdA@127.0.0.1:9/live", ["p@ss", "ssW0rdA"]),
        ("rtsp://admin:pa#ss/W0rdB@127.0.0.1:9/live", ["pa#ss", "W0rdB"]),
        ("rtsp://admin:pass W0rdC@127.0.0.1:9/live", ["pass W0rd", "W0rdC"]),
        ("http://127.0.0.1:9/v.mjpg?access_token=SECRETD1&apikey=SECRETD2&api_key=SECRETD3", ["SECRETD"]),
        ("https://127.0.0.1:9/v.m3u8?X-Amz-Signature=SECRETE1&sig=SECRETE2&password=SECRETE3", ["SECRETE"]),
        ("http://ghp_SECRETF16C7e42F292c6912E77@127.0.0.1:9/v.mjpg", ["SECRETF", "ghp_"]),
        ("rtsp://admin:pw[SECRETG@[::1:9/live", ["SECRETG"]),
    ],
    ids=["raw @", "# and /", "space", "query tokens", "signed URL", "token as user", "unparsable"],
)
def test_credentials_are_never_printed(tmp_path: Path, url: str, secrets: list[str]):
    result = run_vpipe("run", url, "--max-reconnects", "0", "--output", tmp_path / "out")
    line = one_line_error(result, "cannot connect")
    assert "127.0.0.1:9/" in line or "[::1:9/" in line, "the host stays readable"
    for secret in secrets:
        assert secret not in result.stdout + result.stderr


# --- 7. one output folder, one run -----------------------------------------------------------------


def test_an_output_folder_holds_one_run(tmp_path: Path, highway: Path):
    out = tmp_path / "out"
    assert run_vpipe("run", highway, "--output", out, "--max-frames", "10", "--quiet").returncode == 0
    first = {path.name: path.read_bytes() for path in out.iterdir()}
    assert "annotated.mp4" in first

    refused = run_vpipe("run", highway, "--output", out, "--max-frames", "5", "--no-video")  # another config
    one_line_error(refused, "holds another run's outputs (annotated.mp4, counts.csv", code=4)  # not bad input
    assert {path.name: path.read_bytes() for path in out.iterdir()} == first, "the earlier run is untouched"

    again = run_vpipe("run", highway, "--output", out, "--max-frames", "5", "--no-video", "--overwrite", "--quiet")
    assert again.returncode == 0, again.stderr
    assert not (out / "annotated.mp4").exists(), "no stale video beside the new summary"
    assert json.loads((out / "summary.json").read_text())["frames"] == 5
    assert len((out / "counts.csv").read_text().splitlines()) == 1 + 5


# --- 8, 13. geometry, duplicate keys; 9. a config that is not text ----------------------------------

SQUARE = [[100, 100], [300, 100], [300, 300], [100, 300]]
GROUND = [[0, 0], [5, 0], [5, 20], [0, 20]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"speed: {{image_points: [[0, 100], [100, 100], [200, 100], [300, 100]], world_points: {GROUND}}}",
            "speed: image_points: three of the four points lie on one line",
        ),
        (
            f"speed: {{image_points: {SQUARE}, world_points: [[0, 0], [5, 0], [0, 20], [5, 20]]}}",
            "speed: image_points and world_points are not in the same order",
        ),
        (
            "zones: [{name: bowtie, polygon: [[100, 100], [300, 300], [300, 100], [100, 300]]}]",
            "zones[0]: polygon: the polygon crosses itself",
        ),
        (
            "zones: [{name: flat, polygon: [[100, 100], [200, 100], [300, 100]]}]",
            "zones[0]: polygon: the polygon has no area",
        ),
        ("model:\n  conf: 0.2\n  imgsz: 320\n  conf: 0.3", "duplicate key 'conf' at line 4, column 3"),
    ],
    ids=["collinear speed points", "speed points out of order", "bow-tie zone", "zero-area zone", "duplicate key"],
)
def test_degenerate_geometry_and_duplicate_keys_are_errors(tmp_path: Path, highway: Path, text: str, expected: str):
    config = tmp_path / "bad.yaml"
    config.write_text(text + "\n")
    one_line_error(run_vpipe("run", highway, "--config", config, "--output", tmp_path / "out"), f"{config}: {expected}")
    assert not (tmp_path / "out").exists()


def test_sound_geometry_still_loads():
    """The checks above refuse only the broken shapes: a calibration and zones that make sense load."""
    config = load_config(
        None,
        {
            "speed": {"image_points": [[300, 100], [500, 100], [700, 500], [100, 500]], "world_points": GROUND},
            "zones": [{"name": "concave", "polygon": [[0, 0], [10, 0], [10, 10], [5, 2], [0, 10]]}],
        },
    )
    assert config.speed.enabled and len(config.zones[0].polygon) == 5


def test_a_config_that_is_not_utf8_is_one_line(tmp_path: Path, highway: Path):
    one_line_error(
        run_vpipe("run", highway, "--config", highway, "--output", tmp_path / "out"),
        f"{highway}: cannot read config file: not UTF-8 text",
    )


# --- 14. small ones ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--conf", "2"], "vpipe: error: --conf: expected a number between 0 and 1, got 2.0"),
        (["--line", "gate:0,10,5000,10"], "vpipe: error: --line: lines[0] (gate): point (5000, 10) is outside"),
        (["--model", MISSING_MODEL], f"(looked at {MISSING_MODEL});"),
    ],
    ids=["--conf", "--line", "--model absolute"],
)
def test_flag_errors_name_the_flag(tmp_path: Path, highway: Path, flags: list[str], expected: str):
    line = one_line_error(run_vpipe("run", highway, "--output", tmp_path / "out", *flags), expected)
    assert "<defaults>" not in line and "models//" not in line


def test_an_unquoted_glob_gets_a_hint_to_quote_it(tmp_path: Path):
    frames = [tmp_path / f"frame{i}.jpg" for i in range(5)]
    for frame in frames:
        frame.write_bytes(b"")
    line = one_line_error(run_vpipe("run", *frames), "the shell expanded an unquoted pattern into 5 files")
    assert "quote it" in line and "and 1 more" in line


@pytest.mark.parametrize(
    ("grid", "expected"), [("2000x2000", "each from 1 to 100"), ("100x100", "makes slots smaller than 4 px")]
)
def test_slots_grid_has_a_limit(tmp_path: Path, highway: Path, grid: str, expected: str):
    result = run_vpipe("slots", highway, "--grid", grid, "--region", "0,0,300,300", "--output", tmp_path / "s.yaml")
    one_line_error(result, expected)
    assert not (tmp_path / "s.yaml").exists()
