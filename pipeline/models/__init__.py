"""The detection stage, in four parts:

- :mod:`~pipeline.models.resolve`: which weights run, on which backend, device and precision, at
  which input size (:class:`ModelSpec`), decided before anything is loaded;
- :mod:`~pipeline.models.export` and :mod:`~pipeline.models.quantization`: ``.pt`` weights exported
  once to ONNX or OpenVINO (int8 on CPUs with int8 dot products) at that size, and cached;
- the runners: :class:`OpenVINOModelRunner` (OpenVINO's runtime, several frames in flight),
  :class:`UltralyticsPredictorRunner` (PyTorch, ONNX Runtime) and :class:`ThreadCountTrial`
  (OpenVINO on every core or one fewer, whichever the first frames run faster with);
- :class:`Detector`, which puts them together for the pipeline.
"""

from pipeline.models.detector import Detector, ModelRunner, PendingDetections
from pipeline.models.export import DEFAULT_CALIBRATION, export_path, exported_model
from pipeline.models.openvino_runner import OpenVINOModelRunner
from pipeline.models.predictor import UltralyticsPredictorRunner
from pipeline.models.resolve import (
    DEFAULT_WEIGHTS,
    REPO_MODELS_DIR,
    ModelSpec,
    input_size,
    resolve_model,
    resolve_weights,
    select_backend,
    select_device,
)
from pipeline.models.thread_trial import ThreadCountTrial

__all__ = [
    "DEFAULT_CALIBRATION",
    "DEFAULT_WEIGHTS",
    "REPO_MODELS_DIR",
    "Detector",
    "ModelRunner",
    "ModelSpec",
    "OpenVINOModelRunner",
    "PendingDetections",
    "ThreadCountTrial",
    "UltralyticsPredictorRunner",
    "export_path",
    "exported_model",
    "input_size",
    "resolve_model",
    "resolve_weights",
    "select_backend",
    "select_device",
]
