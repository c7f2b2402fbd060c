"""Model resolution: from the model config and the frame size to a :class:`ModelSpec` saying which
weights run, on which engine and device, at which precision and input size, and where their export is
cached. Nothing is loaded or exported here, so a device or backend that cannot work is refused
before a run opens its outputs.

Example:
    >>> spec = resolve_model(ModelConfig(device="cpu", backend="onnx"), frame_size=(960, 540))
    >>> spec.backend, spec.device, spec.precision, spec.input_size, spec.export_path.name
    ('onnx', 'cpu', 'fp32', (384, 640), 'yolo11n.onnx')
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import ModelConfig
from pipeline.errors import ModelError
from pipeline.models.export import export_path
from pipeline.models.quantization import select_precision

REPO_MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"
DEFAULT_WEIGHTS = {"detect": "yolo11n.pt", "segment": "yolo11n-seg_int8_openvino_model"}


@dataclass(frozen=True)
class ModelSpec:
    """What a run's detector is, decided before anything is loaded.

    Attributes:
        weights: The resolved weights: a local path, or an Ultralytics name to download when online.
        backend: The engine that runs the model: ``torch``, ``onnx`` or ``openvino``.
        device: Where inference runs: ``cpu``, ``cuda:N`` or ``mps``.
        precision: ``fp32``, ``int8`` (OpenVINO) or ``fp16`` (PyTorch on CUDA).
        input_size: Model input (height, width).
        export_path: Where the export of ``.pt`` weights to ``backend`` is cached; None where the
            weights run as they are, or are not downloaded yet.
    """

    weights: str
    backend: str
    device: str
    precision: str
    input_size: tuple[int, int]
    export_path: Path | None

    @property
    def needs_export(self) -> bool:
        """Whether ``.pt`` weights are exported to another engine before they run."""
        return self.weights.endswith(".pt") and self.backend != "torch"


def resolve_model(config: ModelConfig, frame_size: tuple[int, int]) -> ModelSpec:
    """Decide the weights, backend, device, precision, input size and export path for a run.

    Args:
        config: The run's model section.
        frame_size: The source's (width, height).

    Raises:
        ModelError: The weights are not found, or the device is missing or cannot run the backend.
    """
    weights = resolve_weights(config.weights, config.task)
    size = input_size(*frame_size, config.imgsz, upscale=config.upscale)
    if weights.endswith(".pt"):
        device = select_device(config.device)
        backend = select_backend(config.backend, device)
        if config.device == "auto" and not _runs_on(backend, device):  # e.g. --backend openvino on a GPU machine
            device = "cpu"
        precision = select_precision(config.precision, backend, device)
    else:  # already exported: the engine is the format's, the precision in its name if anywhere
        backend = {".onnx": "onnx"}.get(Path(weights).suffix, "openvino" if "openvino" in weights else "torch")
        device = "cpu" if config.device == "auto" else select_device(config.device)
        precision = "int8" if "int8" in Path(weights).name else "fp32"
    check_device(device, backend, asked=config.device)
    if backend == "torch" and device.startswith("cuda"):
        precision = "fp16"
    export = None
    if weights.endswith(".pt") and backend != "torch" and Path(weights).is_file():
        export = export_path(Path(weights), backend, size, precision, config.calibration)
    return ModelSpec(weights, backend, device, precision, size, export)


def resolve_weights(weights: str | None, task: str | None) -> str:
    """Find model weights: an existing path, then (a bare name) a file of that name in ``models/``
    (the working folder's, then vpipe's own), then Ultralytics.

    Args:
        weights: A path, a file name in ``models/`` (e.g. ``yolo11n.pt``) or an Ultralytics model name;
            None picks the task's default. A name with a folder in it is a path and is looked for there only.
        task: ``detect`` or ``segment``; picks the default weights when ``weights`` is None.

    Returns:
        A local path, or the bare name for Ultralytics to download when the user is online.

    Raises:
        ModelError: Not found locally and downloads are off (``YOLO_OFFLINE=1``, the default).
    """
    name = weights or DEFAULT_WEIGHTS[task or "detect"]
    bare = Path(name).name == name  # no folder, not even ./
    candidates = [Path(name), *([Path.cwd() / "models" / name, REPO_MODELS_DIR / name] if bare else [])]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    if os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes"):
        tried = dict.fromkeys(_shown(candidate) for candidate in candidates)  # models/ may be vpipe's own
        raise ModelError(
            f"model '{name}' not found (looked at {', '.join(tried)}); copy the weights into models/, "
            "or set YOLO_OFFLINE=0 to let Ultralytics download it when online"
        )
    return name


def _shown(path: Path) -> str:
    """``path`` normalised (no ``//`` or ``./``), relative to the working folder where it is inside it."""
    full = Path(os.path.normpath(path.absolute()))
    return str(full.relative_to(Path.cwd())) if full.is_relative_to(Path.cwd()) else str(full)


def select_device(device: str) -> str:
    """``auto``: the first CUDA GPU if PyTorch sees one, else the CPU; ``cuda`` and ``N`` name GPU
    ``cuda:0`` and ``cuda:N``; ``cpu``, ``cuda:N`` and ``mps`` pass through.

    Example:
        >>> select_device("cuda"), select_device("1"), select_device("cpu")
        ('cuda:0', 'cuda:1', 'cpu')
    """
    if device == "auto":
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        return "cuda:0"
    return f"cuda:{device}" if device.isdigit() else device


def check_device(device: str, backend: str, asked: str | None = None) -> None:
    """Refuse a device this machine lacks, or one the backend would not really run on.

    OpenVINO runs here on the CPU only, and ONNX Runtime on a GPU only with its CUDA provider
    (``onnxruntime-gpu``): rather than run on the CPU while the summary names the GPU, such a
    combination is an error naming what would work.

    Args:
        device: Where inference would run (``cpu``, ``cuda:N``, ``mps``).
        backend: The engine that would run it.
        asked: The device as the user wrote it, for the message (default: ``device``).

    Raises:
        ModelError: One line saying what is missing and what to use instead.
    """
    if device == "cpu":
        return
    flag = f"--device {asked or device}"
    if backend == "openvino":
        raise ModelError(f"{flag}: the openvino backend runs on the CPU only; use --backend torch or --device cpu")
    if not _runs_on(backend, device):
        raise ModelError(
            f"{flag}: ONNX Runtime here has no {'MPS' if device == 'mps' else 'CUDA'} support; "
            "use --backend torch or --device cpu"
        )
    import torch

    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ModelError(f"{flag}: Apple's Metal (MPS) is not available on this machine; use --device cpu")
        return
    index = device.partition(":")[2]
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not gpus:
        raise ModelError(f"{flag}: PyTorch finds no CUDA GPU on this machine; use --device cpu (or auto)")
    if not index.isdigit() or int(index) >= gpus:
        raise ModelError(f"{flag}: this machine has {gpus} CUDA GPU(s), cuda:0 to cuda:{gpus - 1}")


def _runs_on(backend: str, device: str) -> bool:
    """Whether ``backend`` can run on ``device`` at all (not whether the device is there)."""
    if device == "cpu" or backend == "torch":
        return True
    if backend == "onnx" and device.startswith("cuda"):
        import onnxruntime

        return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    return False


def select_backend(backend: str, device: str) -> str:
    """Resolve ``auto`` to the fastest backend installed for ``device``: on a CPU OpenVINO, then
    ONNX Runtime, then PyTorch (``scripts/benchmark.py`` measures them); on a GPU PyTorch (TensorRT
    is not a dependency)."""
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
