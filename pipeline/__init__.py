"""vpipe: real-time video analytics (YOLO11 + ByteTrack + counting) as a frame-streaming pipeline.

The stages, each a small object with one method, wired by :func:`pipeline.run.runner.run`::

    io.sources  -> models.Detector -> tracking.ByteTrackTracker -> analytics -> annotators -> io.sinks
"""

from pipeline.runtime import set_library_defaults

# Before anything imports Ultralytics or OpenVINO (see pipeline.runtime).
set_library_defaults()

# OpenCV must be loaded before PyAV: with PyAV's FFmpeg libraries loaded first, cv2.imshow (--show)
# hangs silently. Everything here uses OpenCV anyway.
import cv2  # noqa: E402, F401

__version__ = "0.1.0"
