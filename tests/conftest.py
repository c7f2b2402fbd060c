"""Shared fixtures: paths to the bundled clips and a way to run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Runs under the system Python with GStreamer's bindings (gi), not in this venv.
collect_ignore = ["servers/rtsp_server.py"]

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_videos"
CONFIGS = REPO / "configs"
GROUND_TRUTH = Path(__file__).resolve().parent / "data"


def run_vpipe(*args: str | Path, timeout: float = 600, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pipeline ARGS`` from the repository root, offline, and capture its output."""
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def highway() -> Path:
    return SAMPLES / "highway.mp4"


@pytest.fixture(scope="session")
def street() -> Path:
    return SAMPLES / "street_topdown.mp4"
