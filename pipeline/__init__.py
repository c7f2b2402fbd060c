"""vpipe: real-time video analytics (YOLO11 + ByteTrack + counting) as a frame-streaming pipeline.

The stages, each a small object with one method, wired by :func:`pipeline.runner.run`::

    io.sources  -> models.Detector -> tracking.ByteTrackTracker -> analytics -> annotators -> io.sinks
"""

import os
import sys

# Ultralytics probes the network when it is imported and downloads weights, fonts and packages on
# demand. Default to offline before anything imports it; an online user can set YOLO_OFFLINE=0.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "false")  # its per-model banners would break our progress bar

# `import openvino` sends a usage event to Google Analytics (and writes an ID under ~/intel) unless
# the user opted out through a file in their home folder: a camera box must not phone home. Every
# OpenVINO and NNCF tool falls back to a no-op when the telemetry package cannot be imported.
sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]

# OpenCV must be loaded before PyAV: with PyAV's FFmpeg libraries loaded first, cv2.imshow (--show)
# hangs silently. Everything here uses OpenCV anyway.
import cv2  # noqa: E402, F401

__version__ = "0.1.0"
