"""Running a model through Ultralytics' predictor: PyTorch weights (CPU, CUDA or MPS), ONNX exports
(ONNX Runtime), and any other format Ultralytics loads."""

from __future__ import annotations

from typing import Any

import numpy as np
import supervision as sv

from pipeline.config import ModelConfig
from pipeline.models.openvino_runner import PendingDetections
from pipeline.models.resolve import ModelSpec


class UltralyticsPredictorRunner:
    """Detects frames with Ultralytics' ``predict``: one synchronous call per batch of frames.

    Args:
        model: The loaded Ultralytics model (``ultralytics.YOLO``).
        spec: Input size, device and precision (fp16 on CUDA).
        config: Thresholds and NMS mode.
        class_ids: Classes to keep; None keeps all.
    """

    in_flight = 1
    """Nothing runs in the background: a second call in flight would gain nothing."""
    threads: int | None = None
    """Not set by vpipe (PyTorch's and ONNX Runtime's own defaults)."""

    def __init__(self, model: Any, spec: ModelSpec, config: ModelConfig, class_ids: list[int] | None) -> None:
        self._model = model
        self._options: dict[str, Any] = {
            "imgsz": spec.input_size,
            "conf": config.conf,
            "iou": config.iou,
            "classes": class_ids,
            "agnostic_nms": config.agnostic_nms,
            "device": spec.device,
            "verbose": False,
        }
        if spec.precision == "fp16":
            from ultralytics.cfg import DEFAULT_CFG_DICT

            # Ultralytics 8.4 renamed `half` to `quantize`.
            self._options.update({"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True})

    def start(self, images: list[np.ndarray]) -> PendingDetections:
        """Detect several BGR frames (now); the returned function gives their detections."""
        detections = [sv.Detections.from_ultralytics(result) for result in self._model.predict(images, **self._options)]
        return lambda: detections
