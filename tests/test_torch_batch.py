"""The GPU path's batched pre- and post-processing (pipeline/models/torch_batch.py), run on CPU
tensors: the letterbox against OpenCV's, and four cameras' frames in one call against Ultralytics'
predictor one frame at a time, box by box (paired by overlap, as tests/test_models.py pairs them);
then the detector's runner for PyTorch weights end to end: cameras of two sizes in one call, and a
``vpipe run`` of two cameras on it counting as the hand count."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from ultralytics import YOLO

from pipeline.config import ModelConfig
from pipeline.evaluation import Tolerance, load_counted, load_truth, match_crossings
from pipeline.io.sources.files import open_source
from pipeline.models import Detector
from pipeline.models.preprocess import letterbox_blob
from pipeline.models.resolve import REPO_MODELS_DIR
from pipeline.models.torch_batch import (
    BatchedTorchDetector,
    TorchBatchRunner,
    boxes_to_frame,
    letterbox_batch,
    nms_batch,
)
from tests.conftest import GROUND_TRUTH, SAMPLES, run_highway_cameras
from tests.test_models import _assert_twins, _predict

SIZE = (384, 640)
VEHICLES = [2, 7, 5]  # car, truck, bus


@pytest.fixture(scope="module")
def camera_frames() -> list[np.ndarray]:
    """Four frames of highway.mp4 far apart, as four cameras' frames of one moment."""
    return [frame.image for frame in open_source(str(SAMPLES / "highway.mp4"), max_frames=241)][::80]


def test_the_letterbox_is_opencvs_within_a_grey_level(camera_frames: list[np.ndarray]):
    ours = letterbox_batch(torch.from_numpy(np.stack(camera_frames)), SIZE).numpy()
    theirs = np.concatenate([letterbox_blob(frame, SIZE) for frame in camera_frames])
    assert ours.shape == theirs.shape == (4, 3, *SIZE)
    assert np.abs(ours - theirs).max() <= 1.5 / 255  # OpenCV's fixed-point rounding against float
    assert np.abs(ours - theirs).mean() < 0.15 / 255  # most values equal (0.07 / 255 here)
    assert np.allclose(ours[:, :, :12], 114 / 255) and np.allclose(ours[:, :, -12:], 114 / 255)  # grey bands


def test_nms_keeps_one_box_per_object_and_the_classes_asked_for():
    # anchors: two overlapping car boxes (0.9, 0.8), a truck box elsewhere (0.7), a weak car box (0.05)
    boxes = torch.tensor([[100.0, 100, 40, 40], [102, 101, 40, 40], [300, 200, 60, 50], [500, 300, 20, 20]])
    scores = torch.zeros(4, 80)
    scores[0, 2], scores[1, 2], scores[2, 7], scores[3, 2] = 0.9, 0.8, 0.7, 0.05
    prediction = torch.cat([boxes, scores], dim=1).T[None]
    (kept,) = nms_batch(prediction, conf=0.1, iou=0.7)
    assert kept[:, 4].tolist() == pytest.approx([0.9, 0.7]) and kept[:, 5].tolist() == [2.0, 7.0]
    assert kept[0, :4].tolist() == [80.0, 80.0, 120.0, 120.0]  # centre and size to corners
    (cars,) = nms_batch(prediction, conf=0.1, iou=0.7, class_ids=[2])
    assert cars[:, 5].tolist() == [2.0]
    boxes_to_frame_back = boxes_to_frame(torch.tensor([[0.0, 12.0, 640.0, 372.0]]), SIZE, (540, 960))
    assert boxes_to_frame_back.tolist() == [[0.0, 0.0, 960.0, 540.0]]  # the letterbox's picture is the frame


def test_four_cameras_in_one_call_find_what_the_predictor_finds_one_by_one(camera_frames: list[np.ndarray]):
    predictor = YOLO(str(REPO_MODELS_DIR / "yolo11n.pt"), task="detect")
    model = predictor.model.eval()
    batched = BatchedTorchDetector(model, predictor.names, SIZE, conf=0.1, iou=0.7, class_ids=VEHICLES)
    ours = batched(camera_frames)
    assert len(ours) == 4
    paired = 0
    for image, detections in zip(camera_frames, ours, strict=True):
        theirs = _predict(predictor, image, SIZE, 0.1)
        assert len(detections) > 0 and len(theirs) > 0
        paired += _assert_twins(detections, theirs, conf=0.1)
    assert paired >= 16  # the comparison really happened


def test_the_detectors_pytorch_runner_takes_cameras_of_two_sizes_in_one_call_in_order(
    camera_frames: list[np.ndarray],
):
    detector = Detector(ModelConfig(backend="torch", classes=["car", "truck", "bus"], conf=0.1), frame_size=(960, 540))
    assert isinstance(detector.runner, TorchBatchRunner)
    assert detector.input_size == SIZE
    small = [cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA) for frame in camera_frames]
    frames = [camera_frames[0], small[1], camera_frames[2], small[3], small[0]]  # sizes interleaved
    found = detector.detect_batch(frames)
    assert len(found) == len(frames)
    predictor = YOLO(str(REPO_MODELS_DIR / "yolo11n.pt"), task="detect")
    paired = 0
    for image, detections in zip(frames, found, strict=True):
        theirs = _predict(predictor, image, SIZE, 0.1)  # each frame alone, at the same model input
        assert len(detections) > 0 and len(theirs) > 0
        assert detections.xyxy[:, 2].max() <= image.shape[1] and detections.xyxy[:, 3].max() <= image.shape[0]
        paired += _assert_twins(detections, theirs, conf=0.1)
    assert paired >= 20  # the comparison really happened
    stages = detector.describe()["stages"]
    assert stages["letterbox"] == stages["inference"] == stages["nms"] == detector.device == "cpu"


def test_two_cameras_on_pytorch_count_as_the_hand_count_and_say_where_each_step_ran(tmp_path: Path):
    result, out = run_highway_cameras(tmp_path, 2, "--backend", "torch")
    assert result.returncode == 0, result.stderr
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 2
    truth = load_truth(GROUND_TRUTH / "highway_ground_truth.yaml")
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        assert (summary["backend"], summary["device"], summary["frames"]) == ("torch", "cpu", 335)
        assert summary["stages"] == {
            "decode": "cpu", "letterbox": "cpu", "inference": "cpu", "nms": "cpu", "tracking": "cpu", "video": "cpu"
        }  # fmt: skip
        matched = match_crossings(truth, load_counted(folder / "events.jsonl"), Tolerance.for_run(30000 / 1001, 1))
        assert not matched.missed and not matched.extra, folder.name
