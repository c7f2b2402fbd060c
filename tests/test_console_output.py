"""What the command line prints: with ``--quiet`` nothing at all on success, even on a first run
that exports and quantizes the model; without it vpipe's own notes and summary, and no
third-party warnings about their internals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.models import REPO_MODELS_DIR
from tests.conftest import run_vpipe


def fresh_weights(folder: Path) -> Path:
    """A copy of the bundled weights with an empty export cache beside it (not the shared one)."""
    weights = folder / "yolo11n.pt"
    shutil.copy(REPO_MODELS_DIR / "yolo11n.pt", weights)
    return weights


def test_quiet_prints_nothing_on_a_first_run_that_exports_and_quantizes(tmp_path: Path, street: Path):
    weights, out = fresh_weights(tmp_path), tmp_path / "out"
    args = ("run", street, "--model", weights, "--imgsz", "320", "--precision", "int8", "--max-frames", "10")
    result = run_vpipe(*args, "--output", out, "--quiet")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert json.loads((out / "summary.json").read_text())["frames"] == 10
    exports = sorted(path.name for path in (tmp_path / ".vpipe-cache").iterdir() if path.is_dir())
    assert [name.split("-", 2)[2] for name in exports] == ["openvino-192x320", "openvino-int8-default-192x320"]


def test_a_first_run_shows_its_own_notes_and_no_third_party_warnings(tmp_path: Path, street: Path):
    weights, out = fresh_weights(tmp_path), tmp_path / "out"
    args = ("run", street, "--model", weights, "--imgsz", "320", "--precision", "fp32", "--max-frames", "10")
    result = run_vpipe(*args, "--output", out)  # the OpenVINO export traces the model with torch.jit
    assert result.returncode == 0, result.stderr
    assert "exporting yolo11n.pt to openvino at 320x192 (once; cached)" in result.stderr
    assert "Warning" not in result.stderr and "warn" not in result.stderr.lower()
    assert result.stdout.startswith("completed: 10 frames")


def test_quiet_prints_nothing_with_a_live_page_beyond_loopback(tmp_path: Path, street: Path):
    """``--serve`` (its address line) and ``--host 0.0.0.0`` (its exposure warning) say nothing under
    ``--quiet``; without it, the address is shown once, not again as a log line."""
    args = ("run", street, "--imgsz", "320", "--max-frames", "5", "--no-video", "--serve", "0", "--host", "0.0.0.0")
    quiet = run_vpipe(*args, "--output", tmp_path / "quiet", "--quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    shown = run_vpipe(*args, "--output", tmp_path / "shown")
    assert shown.returncode == 0, shown.stderr
    assert [line for line in shown.stderr.splitlines() if "live view" in line and "warning" not in line] == [
        line for line in shown.stderr.splitlines() if line.startswith("live view: http://0.0.0.0:")
    ]
    assert len([line for line in shown.stderr.splitlines() if line.startswith("live view: ")]) == 1


def test_quiet_prints_nothing_with_a_hundred_zones(tmp_path: Path, street: Path):
    """counts.png draws the largest zones of a hundred, and its legend fits: no layout warning on stderr."""
    zones = "".join(
        f"  - {{name: z{i}, polygon: [[{4 * i}, 0], [{4 * i + 4}, 0], [{4 * i + 4}, 200], [{4 * i}, 200]]}}\n"
        for i in range(100)
    )
    config = tmp_path / "zones.yaml"
    config.write_text(f"zones:\n{zones}")
    args = ("run", street, "--config", config, "--imgsz", "320", "--max-frames", "5", "--no-video")
    result = run_vpipe(*args, "--output", tmp_path / "out", "--quiet")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert (tmp_path / "out" / "counts.png").stat().st_size > 0
