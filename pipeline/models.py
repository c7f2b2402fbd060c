"""The detection stage: weight resolution (offline first) and YOLO11 inference to ``sv.Detections``.

Example::

    detector = Detector(ModelConfig(task="detect"))
    detections = detector(frame.image)
    print(detections.data["class_name"])  # e.g. ["car" "truck"]
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import supervision as sv

from pipeline.config import ModelConfig
from pipeline.errors import ConfigError, ModelError

REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_WEIGHTS = {"detect": "yolo11n.pt", "segment": "yolo11n-seg_int8_openvino_model"}


def resolve_weights(weights: str | None, task: str | None) -> str:
    """Find model weights: an existing path, then a file of that name in ``models/``, then Ultralytics.

    Args:
        weights: A path, a file name in ``models/`` (e.g. ``yolo11n.pt``) or an Ultralytics model name;
            None picks the task's default.
        task: ``detect`` or ``segment``; picks the default weights when ``weights`` is None.

    Returns:
        A local path, or the bare name for Ultralytics to download when the user is online.

    Raises:
        ModelError: Not found locally and downloads are off (``YOLO_OFFLINE=1``, the default).
    """
    name = weights or DEFAULT_WEIGHTS[task or "detect"]
    candidates = [Path(name), Path.cwd() / "models" / name, REPO_MODELS_DIR / name]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    if os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ModelError(
            f"model '{name}' not found (looked at {name} and models/{name}); copy the weights into models/, "
            "or set YOLO_OFFLINE=0 to let Ultralytics download it when online"
        )
    return name


def select_device(device: str) -> str:
    """Map ``auto`` to the first CUDA GPU if there is one, else the CPU; other values pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


class Detector:
    """Runs a YOLO11 detection or segmentation model on one frame at a time.

    Args:
        config: Model section of the run config (weights, task, imgsz, conf, iou, classes, device).
        origin: Where the config came from, for error messages.

    Attributes:
        names: Class id to class name, from the model.
        weights: The resolved weights path or name.
        task: ``detect`` or ``segment``, as the model says.
        device: The device inference runs on.
    """

    def __init__(self, config: ModelConfig, origin: str = "<defaults>") -> None:
        from ultralytics import YOLO  # heavy import: only when a model is really needed

        self.config = config
        self.weights = resolve_weights(config.weights, config.task)
        try:
            self._model = YOLO(self.weights, task=config.task)
        except Exception as exc:  # Ultralytics raises many types for unreadable or unknown weights
            reason = str(exc).splitlines()[0] if str(exc) else repr(exc)
            raise ModelError(f"{self.weights}: cannot load model ({reason})") from None
        if config.task is not None and self._model.task != config.task:
            raise ModelError(f"{self.weights}: is a '{self._model.task}' model, but the task is '{config.task}'")
        self.task: str = self._model.task
        self.names: dict[int, str] = dict(self._model.names)
        self.class_ids = self._class_ids(config.classes, origin)
        # Exported models (OpenVINO, ONNX) run on the CPU whatever torch's device says.
        self.device = select_device(config.device) if self.weights.endswith(".pt") else "cpu"

    def _class_ids(self, class_names: list[str] | None, origin: str) -> list[int] | None:
        if class_names is None:
            return None
        ids_by_name = {name: class_id for class_id, name in self.names.items()}
        unknown = [name for name in class_names if name not in ids_by_name]
        if unknown:
            raise ConfigError(
                f"{origin}: model.classes: unknown class {', '.join(repr(n) for n in unknown)} "
                f"for {Path(self.weights).name} "
                f"(known: {', '.join(self.names.values())})"
            )
        return [ids_by_name[name] for name in class_names]

    def __call__(self, image: np.ndarray) -> sv.Detections:
        """Detect objects in one BGR frame; masks are included for segmentation models."""
        result = self._model.predict(
            image,
            imgsz=self.config.imgsz,
            conf=self.config.conf,
            iou=self.config.iou,
            classes=self.class_ids,
            device=self.device,
            verbose=False,
        )[0]
        return sv.Detections.from_ultralytics(result)
