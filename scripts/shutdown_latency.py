"""Seconds from SIGTERM to exit of ``vpipe run`` on a live camera, in three states (median of N).

States: ``streaming`` (frames flowing), ``backoff`` (camera gone, in the 5th reconnect wait, 8 s),
``connecting`` (a URL nobody listens on, retrying before its first frame).

    python scripts/shutdown_latency.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers.mjpeg import MjpegServer  # noqa: E402


def _start(url: str, out: Path) -> tuple[subprocess.Popen[str], list[str]]:
    command = [sys.executable, "-m", "pipeline", "run", url, "--output", str(out), "--quiet", "--imgsz", "320",
               "--stall-timeout", "1"]  # fmt: skip
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True).start()
    return process, lines


def _wait(condition: object, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the state was never reached")
        time.sleep(0.1)


def _rows(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def measure(state: str, folder: Path) -> float:
    camera = MjpegServer(REPO / "sample_videos" / "street_topdown.mp4").start()
    url = camera.url if state != "connecting" else "http://127.0.0.1:9/video.mjpg"
    process, lines = _start(url, folder / "out")
    try:
        if state == "connecting":
            _wait(lambda: any("attempt=3" in line for line in lines))
        else:
            _wait(lambda: _rows(folder / "out" / "counts.csv") >= 20)
        if state == "backoff":
            camera.stop()
            _wait(lambda: any("attempt=5" in line for line in lines))
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        return time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
        camera.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for state in ("streaming", "backoff", "connecting"):
        times = []
        for _ in range(args.repeats):
            with TemporaryDirectory() as folder:
                times.append(measure(state, Path(folder)))
        print(f"{state:<11} median {statistics.median(times):.2f} s  (all: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
