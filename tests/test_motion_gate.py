"""``model.motion_gate``: exact synthetic cases of the gate (noise, compression, a small moving car,
the forced detection after a second), of which frames a run plans to detect, and of the tracks and
parking bays over held frames, with the same per-frame core every way of running uses."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import supervision as sv

from pipeline.config import load_config
from pipeline.io.sources.files import Frame
from pipeline.run.frame_pipeline import FramePipeline, Need
from pipeline.run.motion_gate import MotionGate

FPS = 30.0


def road(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A still BGR scene with texture (grey 60..180 in soft 16-pixel patches)."""
    patches = np.random.default_rng(seed).integers(60, 180, (height // 16, width // 16), dtype=np.uint8)
    grey = cv2.resize(cv2.GaussianBlur(patches, (3, 3), 0), (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def noisy_jpeg(image: np.ndarray, rng: np.random.Generator, noise: int, flicker: int, quality: int) -> np.ndarray:
    """``image`` with fresh sensor noise of up to ``noise`` grey levels per pixel, each 8x8 block
    brighter or darker by up to ``flicker`` (a codec's blocks), through JPEG at ``quality``."""
    height, width = image.shape[:2]
    blocks = rng.integers(-flicker, flicker + 1, (height // 8, width // 8))
    offset = np.kron(blocks, np.ones((8, 8), int))[..., None] + rng.integers(-noise, noise + 1, image.shape)
    noisy = np.clip(image.astype(int) + offset, 0, 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def with_car(image: np.ndarray, x: int, y: int, width: int, height: int, darker: int) -> np.ndarray:
    """``image`` with a car: a box ``darker`` grey levels darker than the road under it."""
    out = image.copy()
    out[y : y + height, x : x + width] = np.clip(out[y : y + height, x : x + width].astype(int) - darker, 0, 255)
    return out


def test_a_still_scene_with_sensor_noise_and_compression_flicker_is_held():
    scene, rng = road(1280, 720), np.random.default_rng(1)
    gate = MotionGate()
    # fresh noise of +-40 grey levels on every pixel and +-10 on every 8x8 block, through JPEG at quality 30
    held = [gate.unchanged(noisy_jpeg(scene, rng, 40, 10, 30), k / FPS) for k in range(30)]
    assert held == [False] + [True] * 29  # the first frame is the reference


def test_a_small_car_moving_is_detected_before_it_moved_half_its_width():
    # A 32x24 car at 1280x720 covers 0.08 % of the frame; 4 px a frame, 60 grey levels darker.
    scene = road(1280, 720)
    gate = MotionGate()
    detected_at = [x for x in range(100, 220, 4) if not gate.unchanged(with_car(scene, x, 360, 32, 24, 60), 0.0)]
    assert len(detected_at) > 1
    assert max(np.diff(detected_at)) <= 32 / 2, detected_at


def test_the_scene_changing_as_a_whole_is_detected():
    scene = road(640, 360)
    gate = MotionGate()
    assert not gate.unchanged(scene, 0.0)
    assert gate.unchanged(scene, 0.1)
    assert not gate.unchanged(np.clip(scene.astype(int) + 40, 0, 255).astype(np.uint8), 0.2)  # lights on


def test_a_frame_is_detected_at_least_once_a_second_and_the_gap_counts_from_there():
    scene = road(640, 360)
    gate = MotionGate()
    times = [0.0, 0.5, 0.99, 1.0, 1.5, 1.99, 2.0, 1.0]  # the last: a clock set back
    assert [gate.unchanged(scene, t) for t in times] == [False, True, True, False, True, True, False, False]


def test_a_frame_of_another_size_is_detected():
    gate = MotionGate()
    assert not gate.unchanged(road(640, 360), 0.0)
    assert not gate.unchanged(road(320, 180), 0.1)


def core_for(detect_every: int = 1, motion_gate: bool = True, **sections: object) -> FramePipeline:
    config = load_config(None, {"model": {"detect_every": detect_every, "motion_gate": motion_gate}, **sections})
    return FramePipeline(config, fps=FPS, class_names={2: "car"}, frame_size=(640, 360))


def test_the_interval_decides_first_and_the_gate_holds_the_frames_it_would_detect():
    core = core_for(detect_every=2)
    scene, moved = road(640, 360), with_car(road(640, 360), 300, 200, 60, 40, 80)
    images = {index: scene for index in range(36)} | {33: moved, 34: moved}
    needs = [core.detection_need(Frame(images[k], k, k / FPS)) for k in range(36)]
    assert needs[:4] == [Need.DETECT, Need.PREDICT, Need.HOLD, Need.PREDICT]
    assert [k for k, need in enumerate(needs) if need is Need.DETECT] == [0, 30, 34]  # 1 s after 0; the car
    assert all(needs[k] is Need.PREDICT for k in range(1, 36, 2))
    assert [core_for(motion_gate=False).detection_need(Frame(scene, k, k / FPS)) for k in range(3)] == [Need.DETECT] * 3


def car_at(y: float) -> sv.Detections:
    return sv.Detections(np.array([[300.0, y - 40, 360.0, y]]), confidence=np.array([0.9]), class_id=np.array([2]))


def test_a_car_that_stops_before_the_line_stays_there_while_the_scene_is_still_then_crosses_once():
    # Driving down at 10 px a frame, it stops 15 px before the line at y=200 for a second:
    # the tracker's last velocity would carry a prediction 300 px on, across the line.
    core = core_for(lines=[{"name": "stop", "start": [0, 200], "end": [640, 200], "min_crossing_distance": 0}])
    image = np.zeros((360, 640, 3), np.uint8)
    results = [core.step(Frame(image, k, k / FPS), car_at(135 + 10 * k)) for k in range(6)]  # to y=185
    results += [core.step(Frame(image, k, k / FPS), None, held=True) for k in range(6, 36)]
    assert all(r.tracked.xyxy.tolist() == [[300.0, 145.0, 360.0, 185.0]] for r in results[6:])
    assert all(r.tracked.tracker_id.tolist() == [1] for r in results[1:])
    assert not [e for r in results for e in r.events]
    results = [core.step(Frame(image, k, k / FPS), car_at(185 + 10 * (k - 35))) for k in range(36, 40)]
    events = [e for r in results for e in r.events]
    assert [(e.direction, e.frame_index, e.track_id) for e in events] == [("in", 37, 1)]  # y 195 -> 205


def test_a_parked_car_seen_on_the_last_detected_frame_keeps_its_bay_while_the_scene_is_still():
    slot = {"name": "A1", "polygon": [[290, 130], [370, 130], [370, 210], [290, 210]]}
    core = core_for(parking={"slots": [slot], "debounce_s": 0.5})
    image, empty = np.zeros((360, 640, 3), np.uint8), sv.Detections.empty()
    for k in range(5):
        core.step(Frame(image, k, k / FPS), empty)
    events = [e for e in core.step(Frame(image, 5, 5 / FPS), car_at(200)).events]  # it arrives, then all is still
    for k in range(6, 66):
        events += core.step(Frame(image, k, k / FPS), None, held=True).events
    assert [(e.slot, e.occupied, e.frame_index) for e in events] == [("A1", True, 5)]
    assert core.analytics.parking is not None and core.analytics.parking.occupied == {"A1": True}


@pytest.mark.parametrize("value", ["yes please", 2])
def test_motion_gate_is_a_boolean_in_the_config_and_a_flag(value: object):
    from pipeline.cli_args import add_model_flags, model_overrides
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=r"model.motion_gate"):
        load_config(None, {"model": {"motion_gate": value}})
    assert load_config(None, {}).model.motion_gate is False
    import argparse

    parser = argparse.ArgumentParser()
    add_model_flags(parser)
    assert model_overrides(parser.parse_args(["--motion-gate"]))["motion_gate"] is True
    assert "motion_gate" not in model_overrides(parser.parse_args([]))


def test_the_console_summary_says_what_the_gate_saved():
    from pipeline.cli import format_summary
    from pipeline.run.summary import ModelInfo, RunSummary

    model = ModelInfo("yolo11n.pt", "detect", "cpu", 640, "openvino", "int8", [384, 640], 2)
    summary = RunSummary("lot.mp4", 5.0, 1280, 720, model, 1, "runs/lot", frames=40)
    assert "motion gate" not in format_summary(summary)
    summary.motion_gate = {"frames_detected": 8, "frames_motion_skipped": 32}
    assert "motion gate: 8 frames detected, 32 skipped as unchanged" in format_summary(summary).splitlines()
