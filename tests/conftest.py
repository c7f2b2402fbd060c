"""Shared fixtures: paths to the bundled clips, a way to run the real CLI in a subprocess, headless Chromium."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Runs under the system Python with GStreamer's bindings (gi), not in this venv.
collect_ignore = ["servers/rtsp_server.py"]

# A run started in the background of a non-interactive shell (`make test &`) starts with SIGINT ignored,
# and every vpipe child inherits that and ignores the SIGINT the tests send: give it Python's default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_videos"
CONFIGS = REPO / "configs"
GROUND_TRUTH = Path(__file__).resolve().parent / "data"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


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


def run_highway_cameras(
    tmp_path: Path, copies: int, *flags: str | Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``vpipe run`` of a ``.streams`` list naming highway.mp4 ``copies`` times (as that many cameras),
    with configs/traffic.yaml, no video, ``--quiet`` and ``flags``; the result and the output folder."""
    streams = tmp_path / "cameras.streams"
    streams.write_text(f"{SAMPLES / 'highway.mp4'}\n" * copies)
    out = tmp_path / "out"
    command = ("run", streams, "--config", CONFIGS / "traffic.yaml", "--no-video", "--quiet", "--output", out)
    return run_vpipe(*command, *flags), out


@pytest.fixture(scope="session")
def highway() -> Path:
    return SAMPLES / "highway.mp4"


@pytest.fixture(scope="session")
def street() -> Path:
    return SAMPLES / "street_topdown.mp4"


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium driven by Selenium (the live page and editor tests)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"the browser tests need headless Chromium: {', '.join(missing)} not found; "
            "install them with `apt-get install -y chromium chromium-driver` (CI installs them)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the browser tests need selenium: pip install selenium (a dev dependency)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--window-size=800,700",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(15)
        driver.set_script_timeout(5)
        yield driver
    finally:
        driver.quit()
