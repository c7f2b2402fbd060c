"""Desktop windows for ``--show``: each source's latest annotated frame in its own OpenCV window."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping

import cv2
import numpy as np

from pipeline.closing import Closing
from pipeline.config.columns import Column
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)


# Run in a child process: Qt aborts the whole process (SIGABRT) when it cannot reach a display.
_WINDOW_PROBE = (
    "import cv2, numpy as np\n"
    "cv2.namedWindow('vpipe-probe', cv2.WINDOW_NORMAL)\n"
    "cv2.imshow('vpipe-probe', np.zeros((8, 8, 3), np.uint8))\n"
    "cv2.waitKey(1)\n"
    "cv2.destroyAllWindows()\n"
)


def _opencv_gui() -> str:
    """The GUI backend this cv2 was built with ("NONE" in opencv-python-headless)."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return match.group(1) if match else "NONE"


def check_display(timeout_s: float = 20.0) -> None:
    """Check that OpenCV can open a window here, without risking this process.

    Raises:
        PipelineError: One line starting ``--show needs a display`` that says what is missing.
    """
    hint = "use --serve PORT to watch in a browser"
    if _opencv_gui().upper() == "NONE":
        raise PipelineError(
            f"--show needs a display and an OpenCV with GUI support; this cv2 has none "
            f"(opencv-python-headless?): install opencv-python, or {hint}"
        )
    if sys.platform.startswith(("linux", "freebsd")) and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise PipelineError(f"--show needs a display: DISPLAY is not set (headless machine?); {hint}")
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _WINDOW_PROBE], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise PipelineError(
            f"--show needs a display: opening a test window took over {timeout_s:.0f} s; {hint}"
        ) from None
    if probe.returncode != 0:
        lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
        reason = next((line for line in lines if "display" in line.lower()), lines[-1] if lines else "it failed")
        raise PipelineError(f"--show needs a display: cannot open a window ({reason[:200]}); {hint}")


class WindowView(Closing):
    """Shows each source's latest annotated frame in its own OpenCV window (``--show``).

    Every OpenCV GUI call happens on one thread of its own (GUI toolkits want a single GUI thread),
    which also keeps the windows responsive between frames. Not for macOS, where windows must
    belong to the main thread.

    Args:
        max_fps: Most frames per second shown per window.
        title: Window titles are ``"{title}: {source}"``.

    Raises:
        PipelineError: No usable display (one line, ``--show needs a display ...``).
    """

    def __init__(self, max_fps: float = 30.0, title: str = "vpipe") -> None:
        if max_fps <= 0:
            raise ValueError("max_fps must be > 0")
        check_display()
        self.title = title
        self.frames_shown = 0  # imshow calls so far
        self._interval_ms = max(1, round(1000 / max_fps))
        self._lock = threading.Lock()
        self._pending: dict[str, np.ndarray] = {}
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="window-view", daemon=True)
        self._thread.start()

    def publish(
        self, source: str, image_bgr: np.ndarray, frame_index: int, timestamp_s: float, counts: dict[str, float | int]
    ) -> None:
        """Show this frame in ``source``'s window soon; O(1), frames in between are skipped.

        Same signature as :meth:`LiveView.publish` (the counts are drawn on the frame already).
        Re-raises an error of the window thread.
        """
        self._raise_pending()
        with self._lock:
            self._pending[source] = image_bgr

    def _run(self) -> None:
        windows = False
        try:
            while not self._stop.is_set():
                with self._lock:
                    pending, self._pending = self._pending, {}
                for source, image in pending.items():
                    cv2.imshow(f"{self.title}: {source}", image)
                    self.frames_shown += 1
                    windows = True
                if windows:
                    cv2.waitKey(self._interval_ms)  # paces and keeps the windows repainting
                else:
                    self._stop.wait(self._interval_ms / 1000)
        except BaseException as error:  # handed to the publishing thread
            self._error = error
        finally:
            if windows:
                cv2.destroyAllWindows()
                cv2.waitKey(1)  # lets the toolkit actually remove them

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def describe_columns(self, source: str, columns: Mapping[str, Column]) -> None:
        """Nothing to do: the counts are drawn on the frame."""

    def end(self, source: str, status: str) -> None:
        """``source`` has ended: its window keeps showing its last frame."""

    def close(self) -> None:
        """Close the windows and stop the thread; re-raises an error of the window thread."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._raise_pending()
