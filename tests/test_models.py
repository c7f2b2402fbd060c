"""Weight resolution: local path, then models/, then Ultralytics (only when online)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.config import ModelConfig
from pipeline.errors import ConfigError, ModelError
from pipeline.models import REPO_MODELS_DIR, Detector, resolve_weights


def test_defaults_per_task_are_the_bundled_models():
    assert Path(resolve_weights(None, None)) == REPO_MODELS_DIR / "yolo11n.pt"
    assert Path(resolve_weights(None, "segment")) == REPO_MODELS_DIR / "yolo11n-seg_int8_openvino_model"


def test_an_existing_path_wins(tmp_path: Path):
    weights = tmp_path / "yolo11n.pt"
    weights.write_bytes(b"x")
    assert resolve_weights(str(weights), "detect") == str(weights)


def test_a_bare_name_is_found_in_models():
    assert Path(resolve_weights("yolo11n-seg.pt", None)) == REPO_MODELS_DIR / "yolo11n-seg.pt"


def test_unknown_model_offline_says_what_to_do(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"model 'yolo11x.pt' not found .* YOLO_OFFLINE=0"):
        resolve_weights("yolo11x.pt", "detect")


def test_unknown_model_online_is_handed_to_ultralytics(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("YOLO_OFFLINE", "0")
    assert resolve_weights("yolo11x.pt", "detect") == "yolo11x.pt"


def test_detector_returns_named_classes_and_filters_them():
    detector = Detector(ModelConfig(classes=["car", "truck"]))
    assert detector.task == "detect" and detector.names[2] == "car"
    assert detector.class_ids == [2, 7]
    detections = detector(np.zeros((240, 320, 3), np.uint8))
    assert detections.mask is None and "class_name" in detections.data


def test_unknown_class_name_is_a_config_error():
    with pytest.raises(ConfigError, match=r"cfg.yaml: model.classes: unknown class 'cars' for yolo11n.pt"):
        Detector(ModelConfig(classes=["cars"]), origin="cfg.yaml")


def test_task_mismatch_is_reported():
    with pytest.raises(ModelError, match="is a 'detect' model, but the task is 'segment'"):
        Detector(ModelConfig(weights="yolo11n.pt", task="segment"))


def test_unreadable_weights(tmp_path: Path):
    weights = tmp_path / "broken.pt"
    weights.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"broken\.pt: cannot load model"):
        Detector(ModelConfig(weights=str(weights)))
