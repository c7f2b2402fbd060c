"""The detection stage: a resolved model (:mod:`pipeline.models.resolve`), loaded, exported if needed,
and run on frames by the runner that fits its backend.

Example::

    detector = Detector(ModelConfig(task="detect"), frame_size=(960, 540))
    detections = detector(frame.image)
    print(detector.backend, detector.input_size, detections.data["class_name"])
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import supervision as sv

from pipeline.config import ModelConfig
from pipeline.errors import ConfigError, ModelError
from pipeline.models.decode import YoloOutputDecoder
from pipeline.models.export import exported_model
from pipeline.models.openvino_runner import OpenVINOModelRunner, PendingDetections
from pipeline.models.predictor import UltralyticsPredictorRunner
from pipeline.models.resolve import ModelSpec, resolve_model
from pipeline.models.thread_trial import ThreadCountTrial


class ModelRunner(Protocol):
    """Runs a loaded model on batches of frames."""

    in_flight: int
    threads: int | None

    def start(self, images: list[np.ndarray]) -> PendingDetections: ...


class Detector:
    """Runs a YOLO11 detection or segmentation model on frames.

    Args:
        config: Model section of the run config (weights, task, backend, imgsz, conf, iou, classes, device).
        frame_size: The source's (width, height), to pick a right-sized rectangular input.
        origin: Where the config came from, for error messages.
        pipelined: The caller keeps :attr:`in_flight` :meth:`start` calls in flight (the pipeline
            does); compiles an OpenVINO model for throughput rather than for one frame's latency,
            and lets a trial on the first frames choose its thread count unless the config sets it.

    Attributes:
        spec: What runs: weights, backend, device, precision, input size, export path.
        weights: The resolved weights path or name (the ``.pt`` before any export).
        backend: ``torch``, ``onnx`` or ``openvino``.
        device: Where inference runs: ``cpu``, ``cuda:N`` or ``mps``.
        precision: ``fp32``, ``int8`` (OpenVINO) or ``fp16`` (PyTorch on CUDA).
        input_size: Model input (height, width).
        names: Class id to class name, from the model.
        task: ``detect`` or ``segment``, as the model says.
        class_ids: The config's classes as the model's ids; None keeps all.
        model_path: What is actually loaded (the exported model when a backend export was made).
        runner: Runs the model: :class:`OpenVINOModelRunner`, :class:`ThreadCountTrial` over two
            of them, :class:`~pipeline.models.torch_batch.TorchBatchRunner` or
            :class:`UltralyticsPredictorRunner`.
    """

    def __init__(
        self,
        config: ModelConfig,
        frame_size: tuple[int, int] = (640, 640),
        origin: str = "<defaults>",
        pipelined: bool = False,
    ) -> None:
        self.config = config
        self.spec = spec = resolve_model(config, frame_size)
        self.weights, self.backend, self.device = spec.weights, spec.backend, spec.device
        self.precision, self.input_size = spec.precision, spec.input_size
        model = _load(spec.weights, config.task)
        self.names: dict[int, str] = dict(model.names)
        self.task: str = model.task
        self.class_ids = class_ids_for(config.classes, self.names, spec.weights, origin)
        self.model_path = spec.weights
        if spec.needs_export:
            weights_pt = model.ckpt_path or spec.weights  # the downloaded file for an Ultralytics name
            self.model_path = str(
                exported_model(weights_pt, self.backend, self.input_size, self.precision, config.calibration)
            )
        self.runner = self._runner(model, pipelined)

    def _runner(self, model: Any, pipelined: bool) -> ModelRunner:
        """Our own OpenVINO runner for OpenVINO models that fit the input size (with the thread
        trial in a pipelined run), our batched PyTorch runner for PyTorch detection weights,
        Ultralytics' predictor for everything else (segmentation on PyTorch, ONNX)."""
        config = self.config
        if self.backend == "openvino":
            decoder = YoloOutputDecoder(
                self.input_size,
                self.names,
                config.conf,
                config.iou,
                self.class_ids,
                config.agnostic_nms,
                masks=self.task == "segment",
            )
            threads = config.inference_threads if pipelined else 0
            with suppress(ValueError):  # a folder given as is, with a fixed input of another size
                runner = OpenVINOModelRunner(Path(self.model_path), decoder, pipelined, threads)
                if pipelined and not threads and runner.threads > 1:
                    one_fewer = OpenVINOModelRunner(Path(self.model_path), decoder, True, runner.threads - 1)
                    return ThreadCountTrial(runner, one_fewer)
                return runner
        if self.backend == "torch" and self.task == "detect":
            from pipeline.models.torch_batch import TorchBatchRunner  # torch's import only where it runs

            half = self.precision == "fp16"
            size, ids = self.input_size, self.class_ids
            return TorchBatchRunner(model, size, self.device, half, config.conf, config.iou, ids, config.agnostic_nms)
        if self.model_path != self.spec.weights:
            model = _load(self.model_path, self.task)
        return UltralyticsPredictorRunner(model, self.spec, config, self.class_ids)

    @property
    def in_flight(self) -> int:
        """How many :meth:`start` calls to keep in flight for full throughput (1: no gain)."""
        return self.runner.in_flight

    @property
    def inference_threads(self) -> int | None:
        """CPU threads inference runs on (OpenVINO's; None for other backends)."""
        return self.runner.threads

    def describe(self) -> dict[str, Any]:
        """What ran, for a run's summary: weights, task, device, imgsz, backend, precision, input
        size, inference threads and, where they were chosen by a trial, its frames per second."""
        described: dict[str, Any] = {
            "model": self.weights,
            "task": self.task,
            "device": self.device,
            "imgsz": self.config.imgsz,
            "backend": self.backend,
            "precision": self.precision,
            "input_size": list(self.input_size),
            "inference_threads": self.inference_threads,
        }
        if isinstance(self.runner, OpenVINOModelRunner | ThreadCountTrial):
            described["inference_precision"] = self.runner.inference_precision
        described["stages"] = self.stages()
        trial_fps = self.runner.rates_fps() if isinstance(self.runner, ThreadCountTrial) else {}
        if trial_fps:
            described["inference_threads_trial_fps"] = {str(t): round(fps, 1) for t, fps in trial_fps.items()}
        return described

    def stages(self) -> dict[str, str]:
        """Where each step of a frame runs: decoding, the letterbox (resize, pad, normalise), the
        network, NMS (with the boxes scaled back), tracking and counting, the annotated video."""
        ours_on_cpu = isinstance(self.runner, OpenVINOModelRunner | ThreadCountTrial)
        predictor = isinstance(self.runner, UltralyticsPredictorRunner)  # letterboxes with OpenCV
        batched_torch = not (ours_on_cpu or predictor)
        return {
            "decode": "cpu",
            "letterbox": self.device if batched_torch else "cpu",
            "inference": self.device,
            "nms": "cpu" if ours_on_cpu else self.device,
            "tracking": "cpu",
            "video": "cpu",
        }

    def start(self, images: list[np.ndarray]) -> PendingDetections:
        """Start detecting objects in several BGR frames; call the result to wait for them.

        Keeping :attr:`in_flight` calls started before waiting for the oldest keeps every core busy
        with inference while the caller prepares the next frame (where the runner can; else the
        work is done here)."""
        if not images:  # every frame skipped (--detect-every): nothing to ask the model
            return list
        return self.runner.start(images)

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]:
        """Detect objects in several BGR frames with one inference call (one result per frame)."""
        return self.start(images)()

    def __call__(self, image: np.ndarray) -> sv.Detections:
        """Detect objects in one BGR frame; masks are included for segmentation models."""
        return self.detect_batch([image])[0]


def _load(weights: str, task: str | None) -> Any:
    """The Ultralytics model for ``weights``, checked against the task asked for.

    Raises:
        ModelError: The weights cannot be loaded, or are another task's model.
    """
    from ultralytics import YOLO  # heavy import: only when a model is really needed

    try:
        model = YOLO(weights, task=task)
        _ = model.names  # exported formats load lazily, here
    except Exception as exc:  # Ultralytics raises many types for unreadable or unknown weights
        reason = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise ModelError(f"{weights}: cannot load model ({reason})") from None
    if task is not None and model.task != task:
        raise ModelError(f"{weights}: is a '{model.task}' model, but the task is '{task}'")
    return model


def class_ids_for(class_names: list[str] | None, names: dict[int, str], weights: str, origin: str) -> list[int] | None:
    """The model's ids of the config's class names (None: keep every class).

    Raises:
        ConfigError: A name the model does not know.
    """
    if class_names is None:
        return None
    ids_by_name = {name: class_id for class_id, name in names.items()}
    unknown = [name for name in class_names if name not in ids_by_name]
    if unknown:
        raise ConfigError(
            f"{origin}: model.classes: unknown class {', '.join(repr(n) for n in unknown)} "
            f"for {Path(weights).name} (known: {', '.join(names.values())})"
        )
    return [ids_by_name[name] for name in class_names]


__all__ = ["Detector", "ModelRunner", "ModelSpec", "PendingDetections", "class_ids_for"]
