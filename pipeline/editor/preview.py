"""The editor's preview: the run's detector on the frame the page shows, with the anchor each object counts by."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from pipeline.analytics.parking import model_for_parking
from pipeline.config import ModelConfig, load_config
from pipeline.models import Detector

# The point lines and zones count an object by (LineCounter's default anchor, ZoneCounter's trigger).
ANCHOR = sv.Position.BOTTOM_CENTER


class DetectionPreview:
    """Detects objects on one frame with the model settings of the config file being edited.

    The detector is built on the first request and kept; it is rebuilt only when the file's model
    settings change, so one preview after another runs the model without loading it again.

    Args:
        path: The config file; a missing one means the defaults, as for ``vpipe run``.
        frame_size: The source's (width, height).

    Attributes:
        detector: The detector in use; None until the first :meth:`detect`.
    """

    def __init__(self, path: Path, frame_size: tuple[int, int]) -> None:
        self.path = path
        self.frame_size = frame_size
        self.detector: Detector | None = None  # loading takes seconds: not before a preview is asked for
        self._settings: ModelConfig | None = None
        self._lock = threading.Lock()  # one model load or inference at a time, however many tabs ask

    def _model_settings(self) -> tuple[ModelConfig, str]:
        """The model section as ``vpipe run`` would use it for this file, and the file's name for errors."""
        config = load_config(self.path, text=None if self.path.exists() else "")  # not saved yet: the defaults
        return model_for_parking(config.model, config.parking, self.frame_size), config.origin

    def detect(self, image: np.ndarray) -> dict[str, Any]:
        """Run the detector on ``image`` (BGR).

        Returns:
            ``{"model", "backend", "detections"}``; each detection is ``{"class_name", "confidence",
            "box": [x1, y1, x2, y2], "anchor": [x, y]}`` in source pixels.

        Raises:
            PipelineError: The config does not load, or the model cannot be loaded.
        """
        with self._lock:
            settings, origin = self._model_settings()
            if self.detector is None or settings != self._settings:
                self.detector = None  # a model that no longer loads is not kept either
                self.detector = Detector(settings, frame_size=self.frame_size, origin=origin)
                self._settings = settings
            detector = self.detector
            detections = detector(image)
        return {"model": detector.weights, "backend": detector.backend, "detections": describe(detections)}


def describe(detections: sv.Detections) -> list[dict[str, Any]]:
    """Detections as JSON-ready dicts, with the anchor lines and zones count each one by.

    Example:
        >>> boxes = sv.Detections(xyxy=np.array([[10.0, 20.0, 30.0, 60.0]]), confidence=np.array([0.5]),
        ...                       data={"class_name": np.array(["car"])})
        >>> describe(boxes)
        [{'class_name': 'car', 'confidence': 0.5, 'box': [10.0, 20.0, 30.0, 60.0], 'anchor': [20.0, 60.0]}]
    """
    anchors = detections.get_anchors_coordinates(ANCHOR)
    names = detections.data.get("class_name", [""] * len(detections))
    confidences = detections.confidence if detections.confidence is not None else [None] * len(detections)
    return [
        {
            "class_name": str(name),
            "confidence": None if confidence is None else round(float(confidence), 3),
            "box": [round(float(v), 1) for v in box],
            "anchor": [round(float(v), 1) for v in anchor],
        }
        for box, anchor, name, confidence in zip(detections.xyxy, anchors, names, confidences, strict=True)
    ]
