"""Speed from a perspective calibration, on synthetic tracks with known ground speeds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import supervision as sv

from pipeline.analytics.speed import SpeedEstimator

# A road seen in perspective: a 20 m x 40 m ground rectangle projects onto a trapezoid.
IMAGE = [(300, 100), (500, 100), (700, 500), (100, 500)]
WORLD = [(0, 0), (20, 0), (20, 40), (0, 40)]
FPS = 25


def image_point(ground_xy: tuple[float, float]) -> tuple[float, float]:
    """The inverse mapping, to place synthetic anchors at known ground positions."""
    inverse = cv2.getPerspectiveTransform(np.float32(WORLD), np.float32(IMAGE))
    x, y = cv2.perspectiveTransform(np.array([[ground_xy]], np.float64), inverse)[0, 0]
    return float(x), float(y)


def drive(estimator: SpeedEstimator, kmh: float, frames: int, jitter_px: float = 0.0, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    speeds = []
    for frame_index in range(frames):
        metres = 2.0 + kmh / 3.6 * frame_index / FPS  # down the road (ground y)
        x, y = image_point((10.0, metres))
        x, y = x + rng.normal(0, jitter_px), y + rng.normal(0, jitter_px)
        detections = sv.Detections(xyxy=np.array([[x - 20, y - 30, x + 20, y]]), tracker_id=np.array([1]))
        speeds.append(estimator.update(detections, frame_index / FPS)[1])
    return speeds


@pytest.mark.parametrize("kmh", [30.0, 50.0, 90.0])
def test_constant_speed_is_measured_within_3_percent_through_perspective(kmh: float):
    speeds = drive(SpeedEstimator(IMAGE, WORLD), kmh, frames=int(FPS * 1.4 * 3.6 * 30 / kmh))
    assert speeds[-1] == pytest.approx(kmh, rel=0.03)


def test_smoothing_keeps_jittery_boxes_within_3_percent():
    speeds = drive(SpeedEstimator(IMAGE, WORLD, window_s=1.0), 50.0, frames=40, jitter_px=1.5)
    assert speeds[-1] == pytest.approx(50.0, rel=0.03)


def test_no_speed_until_enough_history():
    speeds = drive(SpeedEstimator(IMAGE, WORLD, min_span_s=0.3), 50.0, frames=12)
    # At 25 fps frame 7 has 0.28 s of history, the last frame without a speed; frame 8 has 0.32 s.
    assert speeds[:8] == [None] * 8
    assert speeds[8] == pytest.approx(50.0, rel=0.03)


def test_implausible_speeds_are_rejected_not_clipped():
    speeds = drive(SpeedEstimator(IMAGE, WORLD, max_kmh=120.0), 200.0, frames=20)
    assert all(speed is None for speed in speeds)


def test_history_of_vanished_tracks_is_dropped():
    estimator = SpeedEstimator(IMAGE, WORLD, forget_after_s=0.5)
    drive(estimator, 50.0, frames=10)
    estimator.update(sv.Detections(xyxy=np.zeros((0, 4)), tracker_id=np.zeros(0, int)), 5.0)
    assert estimator.tracks_held == 0
