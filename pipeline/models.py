"""The detection stage: weight resolution (offline first), backend choice and export, and YOLO11
inference to ``sv.Detections``.

The backend matters more than most code tweaks (YOLO11n on a 2-core CPU, 960x540 frames at a
384x640 input: PyTorch 15 FPS, ONNX Runtime 36 FPS, OpenVINO 61 FPS), so a ``.pt`` model is
exported once to the chosen backend, at the exact input size the source needs, and cached; on a
CPU with int8 dot products the OpenVINO export is also quantized to int8 (``quantization.py``).
Our own OpenVINO exports (detection and segmentation) then run through :class:`OpenVINODetections`,
which skips Ultralytics' per-call predictor (in the pipeline that alone took end-to-end speed from
36 to 45 FPS) and, in the pipeline, keeps several frames in flight on OpenVINO's throughput streams.

Example::

    detector = Detector(ModelConfig(task="detect"), frame_size=(960, 540))
    detections = detector(frame.image)
    print(detector.backend, detector.input_size, detections.data["class_name"])
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

from pipeline.autotune import FastestOf
from pipeline.config import ModelConfig
from pipeline.errors import ConfigError, ModelError
from pipeline.preprocess import PAD_VALUE, letterbox, letterbox_window
from pipeline.quantization import select_precision

REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_WEIGHTS = {"detect": "yolo11n.pt", "segment": "yolo11n-seg_int8_openvino_model"}
DEFAULT_CALIBRATION = REPO_MODELS_DIR / "calibration"
"""Frames int8 models are calibrated on unless ``model.calibration`` names the user's own footage."""


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
    in_models = not Path(name).is_absolute()  # an absolute path names one place
    candidates = [Path(name), *([Path.cwd() / "models" / name, REPO_MODELS_DIR / name] if in_models else [])]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    if os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ModelError(
            f"model '{name}' not found (looked at {name}{f' and models/{name}' if in_models else ''}); "
            "copy the weights into models/, "
            "or set YOLO_OFFLINE=0 to let Ultralytics download it when online"
        )
    return name


BACKENDS = ("torch", "onnx", "openvino")


def select_device(device: str) -> str:
    """Map ``auto`` to the first CUDA GPU if there is one, else the CPU, and a bare index (Ultralytics'
    spelling of a GPU) to ``cuda:N``, so that backend and precision see a GPU; other values pass through.

    Example:
        >>> select_device("1"), select_device("cpu")
        ('cuda:1', 'cpu')
    """
    if device.isdigit():
        return f"cuda:{device}"
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def select_backend(backend: str, device: str) -> str:
    """Resolve ``auto`` to the fastest backend installed for ``device``.

    Measured here (``scripts/benchmark.py``): on CPU OpenVINO beats ONNX Runtime beats PyTorch; on a
    GPU, PyTorch with fp16 (TensorRT is not a dependency).
    """
    if backend != "auto":
        return backend
    if device.startswith("cuda") or device == "mps":
        return "torch"
    for name, module in (("openvino", "openvino"), ("onnx", "onnxruntime")):
        if importlib.util.find_spec(module) is not None:
            return name
    return "torch"


def input_size(width: int, height: int, imgsz: int, upscale: bool = False, stride: int = 32) -> tuple[int, int]:
    """The model input (height, width) for a frame: the source's aspect ratio, long side ``imgsz``
    (or the source's own if smaller and ``upscale`` is off), each side a multiple of ``stride``.

    Example:
        >>> input_size(960, 540, 640)
        (384, 640)
        >>> input_size(320, 240, 640)
        (256, 320)
        >>> input_size(320, 240, 640, upscale=True)
        (480, 640)
    """
    scale = imgsz / max(width, height)
    if not upscale:
        scale = min(scale, 1.0)
    return (
        max(stride, math.ceil(height * scale / stride) * stride),
        max(stride, math.ceil(width * scale / stride) * stride),
    )


def _weights_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _cache_root(weights: Path) -> Path:
    """``.vpipe-cache`` beside the weights if that folder is writable, else the user's cache."""
    if os.access(weights.parent, os.W_OK):
        return weights.parent / ".vpipe-cache"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vpipe"


def _calibration_id(calibration: str | None) -> str:
    """Names the calibration set in the cache key: ``default``, or a hash of the source's path, size and mtime."""
    if calibration is None:
        return "default"
    path = Path(calibration)
    stamp = f"{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}" if path.exists() else calibration
    return "cal" + hashlib.sha256(stamp.encode()).hexdigest()[:8]


def exported_model(
    weights: str | Path,
    backend: str,
    size: tuple[int, int],
    precision: str = "fp32",
    calibration: str | None = None,
) -> Path:
    """Export a ``.pt`` model to ``backend`` at a fixed input ``size`` (h, w), once, and cache it.

    The cache key is the weights' content hash, the backend, the precision (with the calibration
    set for int8) and the size, so a changed ``.pt`` or another input size gets its own export.
    Exports are written to a temporary folder and moved into place, so an interrupted export never
    leaves a broken cache entry. An int8 model is quantized from the cached fp32 OpenVINO export.

    Raises:
        ModelError: The export failed (e.g. the backend's package is missing).
    """
    from ultralytics import YOLO

    weights = Path(weights)
    height, width = size
    variant = backend if precision == "fp32" else f"{backend}-int8-{_calibration_id(calibration)}"
    key = f"{weights.stem}-{_weights_digest(weights)}-{variant}-{height}x{width}"
    suffix = ".onnx" if backend == "onnx" else "_openvino_model"
    root = _cache_root(weights)
    target = root / key / f"{weights.stem}{suffix}"
    if target.exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        produced = Path(scratch) / f"{weights.stem}{suffix}"
        if precision == "int8":
            from pipeline.quantization import calibration_images, quantize_openvino

            fp32 = exported_model(weights, backend, size)
            quantize_openvino(fp32, produced, size, calibration_images(calibration or str(DEFAULT_CALIBRATION)))
        else:
            staged = Path(scratch) / weights.name
            shutil.copy2(weights, staged)
            try:
                options = {"simplify": True} if backend == "onnx" else {}
                YOLO(str(staged)).export(format=backend, imgsz=size, dynamic=False, verbose=False, **options)
            except Exception as exc:  # Ultralytics wraps export failures in many types
                reason = str(exc).splitlines()[0] if str(exc) else repr(exc)
                raise ModelError(f"{weights}: export to {backend} failed ({reason}); try --backend torch") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(produced, target)
    return target


PendingDetections = Callable[[], list[sv.Detections]]
"""Detections being computed: calling it waits for them (see :meth:`Detector.start`)."""


class OpenVINODetections:
    """Detections from a fixed-size OpenVINO export: letterbox, infer, NMS, scale back, and for a
    segmentation model its masks.

    The same steps as Ultralytics' predictor (its letterbox, its NMS, box scaling and mask
    functions; masks cropped and resized to the frame as ``sv.Detections.from_ultralytics`` does),
    so the detections are the same, without its per-call setup and result objects. The float
    conversion, BGR to RGB and scaling to [0, 1] are compiled into the model (OpenVINO's
    pre-processing), which does them threaded and fused with the first layer: as a NumPy blob they
    cost more than a quarter of the inference itself.

    Args:
        model_dir: The ``*_openvino_model`` folder.
        size: The export's input (height, width).
        names: Class id to name.
        conf: Confidence threshold.
        iou: NMS IoU threshold.
        class_ids: Classes to keep; None keeps all.
        agnostic: One NMS over all classes (else per class).
        pipelined: The caller keeps :attr:`in_flight` frames in flight (:meth:`start`): compile for
            throughput (OpenVINO's streams, each frame on fewer cores) instead of for one frame's
            latency (every core on each frame).
        masks: The model is a segmentation model (a second output: the mask prototypes).
        threads: CPU threads to infer on; 0: every core.
    """

    def __init__(
        self,
        model_dir: Path,
        size: tuple[int, int],
        names: dict[int, str],
        conf: float,
        iou: float,
        class_ids: list[int] | None,
        agnostic: bool = True,
        pipelined: bool = False,
        masks: bool = False,
        threads: int = 0,
    ) -> None:
        import openvino as ov
        from openvino.preprocess import ColorFormat, PrePostProcessor

        core = ov.Core()
        model = core.read_model(str(next(model_dir.glob("*.xml"))))
        shape = model.input().get_partial_shape()
        if shape.is_dynamic:  # e.g. Ultralytics' dynamic exports: fix it to our right-sized input
            model.reshape([1, 3, *size])
        elif list(shape.to_shape()) != [1, 3, *size]:
            raise ValueError(f"{model_dir}: input is {shape}, not [1,3,{size[0]},{size[1]}]")
        steps = PrePostProcessor(model)
        steps.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
            ColorFormat.BGR
        )
        steps.input().model().set_layout(ov.Layout("NCHW"))
        steps.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
        config: dict[str, Any] = {"PERFORMANCE_HINT": "THROUGHPUT" if pipelined else "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads  # the throughput hint fits its streams to these
        self._compiled = core.compile_model(steps.build(), "CPU", config)
        self.threads = int(self._compiled.get_property("INFERENCE_NUM_THREADS"))
        """CPU threads OpenVINO infers on."""
        optimal = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        # At least two, so that one frame is inferred while the last one is post-processed.
        self.in_flight = max(2, optimal) if pipelined else 1
        """How many frames to keep in flight for full throughput."""
        self.size = size
        self._idle: list[Any] = []  # infer requests, each with its own input and output buffers
        self._names = np.array([names[index] for index in range(len(names))])
        self.conf, self.iou, self.class_ids, self.agnostic = conf, iou, class_ids, agnostic
        self.masks = masks

    def start(self, image: np.ndarray) -> Callable[[], sv.Detections]:
        """Start detecting one BGR frame; the returned function waits for its detections.

        Not thread-safe: start and wait from one thread.
        """
        if self._idle:
            request = self._idle.pop()
        else:
            request = self._compiled.create_infer_request()
            request.get_input_tensor().data[:] = PAD_VALUE  # the letterbox border, written once
        letterbox(image, self.size, request.get_input_tensor().data[0])
        request.start_async()

        def finish() -> sv.Detections:
            request.wait()
            try:
                protos = request.get_output_tensor(1).data[0] if self.masks else None
                return self.postprocess(request.get_output_tensor(0).data, protos, image.shape[:2])
            finally:
                self._idle.append(request)

        return finish

    def __call__(self, image: np.ndarray) -> sv.Detections:
        return self.start(image)()

    def postprocess(
        self, prediction: np.ndarray, protos: np.ndarray | None, frame_shape: tuple[int, int]
    ) -> sv.Detections:
        """The model's raw outputs to the frame's detections.

        Args:
            prediction: (1, 4 + classes + mask coefficients, anchors): boxes (centre, size) and class
                scores at the model input.
            protos: (32, h, w) mask prototypes of a segmentation model; None for detection.
            frame_shape: The frame's (height, width).
        """
        import torch
        from ultralytics.utils.nms import non_max_suppression
        from ultralytics.utils.ops import process_mask, scale_boxes

        classes = len(self._names)
        # NMS's own first step (best class score over the threshold), done here in NumPy so that
        # torch only sees (and we only copy out of the request) the few candidates, not every anchor.
        candidates = prediction[0, 4 : 4 + classes, :].max(axis=0) > self.conf
        if candidates.sum() == 6:
            # Ultralytics' NMS reads a last dimension of 6 as an end-to-end model's (boxes, 6) output
            # and would return garbage; one more anchor, under the threshold, is dropped by NMS itself.
            candidates[np.flatnonzero(~candidates)[0]] = True
        kept = non_max_suppression(
            torch.from_numpy(prediction[:, :, candidates]),
            self.conf,
            self.iou,
            self.class_ids,
            agnostic=self.agnostic,
            nc=classes,
        )[0]
        masks = None
        if protos is not None:
            input_masks = process_mask(torch.from_numpy(protos), kept[:, 6:], kept[:, :4], self.size, upsample=True)
            has_pixels = input_masks.amax((-2, -1)) > 0
            kept, input_masks = kept[has_pixels], input_masks[has_pixels]
            masks = self._frame_masks(input_masks.numpy(), frame_shape)
        boxes = scale_boxes(self.size, kept[:, :4], frame_shape).numpy()
        class_id = kept[:, 5].numpy().astype(int)
        return sv.Detections(
            xyxy=boxes.astype(np.float32),
            mask=masks,
            confidence=kept[:, 4].numpy().astype(np.float32),
            class_id=class_id,
            data={"class_name": self._names[class_id]},
        )

    def _frame_masks(self, input_masks: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
        """(n, H, W) 0/1 masks at the model input to boolean masks of the frame: the letterbox's
        border cropped, then resized (all masks in one call, as channels of one image)."""
        height, width = frame_shape
        if not len(input_masks):
            return np.zeros((0, height, width), bool)
        top, left, content_height, content_width = letterbox_window(frame_shape, self.size)
        channels = np.ascontiguousarray(
            input_masks[:, top : top + content_height, left : left + content_width].transpose(1, 2, 0)
        )
        resized = cv2.resize(channels, (width, height), interpolation=cv2.INTER_LINEAR).reshape(height, width, -1)
        return resized.transpose(2, 0, 1) > 0


class Detector:
    """Runs a YOLO11 detection or segmentation model on frames.

    Args:
        config: Model section of the run config (weights, task, backend, imgsz, conf, iou, classes, device).
        frame_size: The source's (width, height), to pick a right-sized rectangular input.
        origin: Where the config came from, for error messages.
        pipelined: The caller keeps :attr:`in_flight` :meth:`start` calls in flight (the pipeline
            does); compiles an OpenVINO model for throughput rather than for one frame's latency.

    Attributes:
        names: Class id to class name, from the model.
        weights: The resolved weights path or name (the ``.pt`` before any export).
        model_path: What is actually loaded (the exported model when a backend export was made).
        backend: ``torch``, ``onnx`` or ``openvino``.
        task: ``detect`` or ``segment``, as the model says.
        device: The device inference runs on.
        input_size: Model input (height, width).
        precision: ``fp32``, ``int8`` (OpenVINO) or ``fp16`` (PyTorch on CUDA).
        in_flight: How many :meth:`start` calls to keep in flight for full throughput (1: no gain).
    """

    def __init__(
        self,
        config: ModelConfig,
        frame_size: tuple[int, int] = (640, 640),
        origin: str = "<defaults>",
        pipelined: bool = False,
    ) -> None:
        from ultralytics import YOLO  # heavy import: only when a model is really needed

        self.config = config
        self.weights = resolve_weights(config.weights, config.task)
        self.input_size = input_size(*frame_size, config.imgsz, upscale=config.upscale)
        is_pt = self.weights.endswith(".pt")
        self.device = select_device(config.device) if is_pt else "cpu"
        if is_pt:
            self.backend = select_backend(config.backend, self.device)
        else:  # already exported: it is what it is
            exported = {".onnx": "onnx"}.get(
                Path(self.weights).suffix, "openvino" if "openvino" in self.weights else "torch"
            )
            self.backend = exported
        self.model_path = self.weights
        try:
            self._model = YOLO(self.weights, task=config.task)
            self.names: dict[int, str] = dict(self._model.names)  # exported formats load lazily, here
        except Exception as exc:  # Ultralytics raises many types for unreadable or unknown weights
            reason = str(exc).splitlines()[0] if str(exc) else repr(exc)
            raise ModelError(f"{self.weights}: cannot load model ({reason})") from None
        if config.task is not None and self._model.task != config.task:
            raise ModelError(f"{self.weights}: is a '{self._model.task}' model, but the task is '{config.task}'")
        self.task: str = self._model.task
        self.class_ids = self._class_ids(config.classes, origin)
        if is_pt:
            self.precision = select_precision(config.precision, self.backend, self.device)
        else:  # an exported model's precision is in its name, if anywhere
            self.precision = "int8" if "int8" in Path(self.weights).name else "fp32"
        # Our own fixed-size OpenVINO export skips Ultralytics' per-call predictor (~2 ms of Python
        # per frame that contends for the GIL with tracking and drawing).
        self._lean: OpenVINODetections | None = None
        self.in_flight = 1
        if is_pt and self.backend != "torch":
            weights_pt = self._model.ckpt_path or self.weights
            self.model_path = str(
                exported_model(weights_pt, self.backend, self.input_size, self.precision, config.calibration)
            )
            if self.backend == "openvino":
                self._lean = self._lean_openvino(Path(self.model_path), config, pipelined)
            else:
                self._model = YOLO(self.model_path, task=self.task)
        elif self.backend == "openvino" and Path(self.weights).is_dir():
            # An OpenVINO folder given as is (the bundled segmentation default): the same lean path
            # where its input can be (or already is) our right-sized one.
            with suppress(ValueError):
                self._lean = self._lean_openvino(Path(self.weights), config, pipelined)
        self._threads_trial: FastestOf[int, OpenVINODetections] | None = None
        if self._lean is not None:
            self.in_flight = self._lean.in_flight
            if pipelined and not config.inference_threads and self._lean.threads > 1:
                self._threads_trial = self._inference_threads_trial(self._lean, config)
                self.in_flight = max(lean.in_flight for lean in self._threads_trial.candidates.values())
        if self.backend != "torch":
            import torch

            # Torch only does NMS and mask arithmetic here: small ops, for which its thread pool's
            # workers spin between calls and take the cores from the exported model's inference
            # (YOLO11n int8 OpenVINO at 384x640 on 2 cores: 14.3 ms per frame with 2 torch threads,
            # 11.3 ms with 1). Process-wide, as torch's thread pool is.
            torch.set_num_threads(1)
        self._predict_options: dict[str, object] = {}
        if self.backend == "torch" and self.device.startswith("cuda"):
            from ultralytics.cfg import DEFAULT_CFG_DICT

            # fp16 on GPUs; Ultralytics 8.4 renamed `half` to `quantize`.
            self._predict_options = {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}
            self.precision = "fp16"

    def _lean_openvino(
        self, model_dir: Path, config: ModelConfig, pipelined: bool, threads: int | None = None
    ) -> OpenVINODetections:
        """``threads`` None: the config's count in a pipelined run, every core otherwise."""
        return OpenVINODetections(
            model_dir,
            self.input_size,
            self.names,
            config.conf,
            config.iou,
            self.class_ids,
            config.agnostic_nms,
            pipelined=pipelined,
            masks=self.task == "segment",
            threads=threads if threads is not None else config.inference_threads if pipelined else 0,
        )

    def _inference_threads_trial(
        self, every_core: OpenVINODetections, config: ModelConfig
    ) -> FastestOf[int, OpenVINODetections]:
        """Every core, or one fewer, whichever the run's first frames go faster with.

        Where inference is most of the work (a large input), it wants every core; where it is not
        (a small one), one core left to decoding, tracking, drawing and encoding can win, as these
        then no longer wait on inference's threads for a core (measured on 2 cores: a 320x240
        source ran 14-20% faster on one inference thread, a 960x540 one 6% slower).
        """
        one_fewer = self._lean_openvino(Path(self.model_path), config, pipelined=True, threads=every_core.threads - 1)
        return FastestOf({every_core.threads: every_core, one_fewer.threads: one_fewer})

    @property
    def inference_threads(self) -> int | None:
        """CPU threads inference runs on (OpenVINO's; None for other backends)."""
        return self._lean.threads if self._lean is not None else None

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
        trial_fps = self._threads_trial.medians() if self._threads_trial else {}
        if trial_fps:
            described["inference_threads_trial_fps"] = {str(t): round(fps, 1) for t, fps in trial_fps.items()}
        return described

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

    def start(self, images: list[np.ndarray]) -> PendingDetections:
        """Start detecting objects in several BGR frames; call the result to wait for them.

        With ``pipelined=True``, keeping :attr:`in_flight` calls started before waiting for the
        oldest keeps every core busy with inference while the calling thread prepares the next frame
        and post-processes the last. Where the backend has no such mode, the work is done here.
        """
        if not images:  # every frame skipped (--detect-every): nothing to ask the model
            return list
        lean = self._lean
        if lean is not None:
            trial = self._threads_trial
            if trial is not None and trial.chosen is None:
                lean = trial.next(len(images))
                if trial.chosen is not None:  # the trial has ended: the winner runs from here on
                    # The other stays compiled (about 30 MB) until the detector goes: freeing an
                    # OpenVINO model mid-run made a later Ctrl-C end the process with SIGSEGV
                    # before the outputs were finalized (OpenVINO 2026.4, 2 of 2 cores).
                    self._lean, self.in_flight = lean, lean.in_flight
            pending = [lean.start(image) for image in images]
            return lambda: [finish() for finish in pending]
        detections = self._predict(images)
        return lambda: detections

    def detect_batch(self, images: list[np.ndarray]) -> list[sv.Detections]:
        """Detect objects in several BGR frames with one inference call (one result per frame)."""
        return self.start(images)()

    def _predict(self, images: list[np.ndarray]) -> list[sv.Detections]:
        results = self._model.predict(
            images,
            imgsz=self.input_size,
            conf=self.config.conf,
            iou=self.config.iou,
            classes=self.class_ids,
            agnostic_nms=self.config.agnostic_nms,
            device=self.device,
            verbose=False,
            **self._predict_options,
        )
        return [sv.Detections.from_ultralytics(result) for result in results]

    def __call__(self, image: np.ndarray) -> sv.Detections:
        """Detect objects in one BGR frame; masks are included for segmentation models."""
        return self.detect_batch([image])[0]
