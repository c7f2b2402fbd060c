"""The export cache: ``.pt`` weights exported once to ONNX or OpenVINO (and quantized to int8) at the
exact input size a source needs, keyed by the weights' content, backend, precision, calibration set
and size.

Example::

    path = export_path(Path("models/yolo11n.pt"), "openvino", (384, 640), "int8")  # where it goes
    path = exported_model(Path("models/yolo11n.pt"), "openvino", (384, 640), "int8")  # built if missing
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from pipeline.errors import ModelError

DEFAULT_CALIBRATION = Path(__file__).resolve().parent.parent.parent / "models" / "calibration"
"""Frames int8 models are calibrated on unless ``model.calibration`` names the user's own footage."""

log = logging.getLogger(__name__)


def _weights_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def cache_root(weights: Path) -> Path:
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


def export_path(
    weights: Path, backend: str, size: tuple[int, int], precision: str = "fp32", calibration: str | None = None
) -> Path:
    """Where the export of ``weights`` to ``backend`` at ``size`` (h, w) is cached (it may not exist yet).

    A changed ``.pt``, another input size, precision or calibration set gets its own entry.
    """
    height, width = size
    variant = backend if precision == "fp32" else f"{backend}-int8-{_calibration_id(calibration)}"
    key = f"{weights.stem}-{_weights_digest(weights)}-{variant}-{height}x{width}"
    suffix = ".onnx" if backend == "onnx" else "_openvino_model"
    return cache_root(weights) / key / f"{weights.stem}{suffix}"


def exported_model(
    weights: str | Path,
    backend: str,
    size: tuple[int, int],
    precision: str = "fp32",
    calibration: str | None = None,
) -> Path:
    """Export a ``.pt`` model to ``backend`` at a fixed input ``size`` (h, w), once, and cache it.

    Exports are written to a temporary folder and moved into place, so an interrupted export never
    leaves a broken cache entry. An int8 model is quantized from the cached fp32 OpenVINO export.

    Raises:
        ModelError: The export failed (e.g. the backend's package is missing).
    """
    weights = Path(weights)
    target = export_path(weights, backend, size, precision, calibration)
    if target.exists():
        return target
    root = target.parent.parent
    root.mkdir(parents=True, exist_ok=True)
    # Processes that need one export at once (the workers of a run) make it once: the others wait.
    with (root / f"{target.parent.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # let go when the file closes, or the process ends
        return target if target.exists() else _export_to(target, weights, backend, size, precision, calibration)


def _export_to(
    target: Path, weights: Path, backend: str, size: tuple[int, int], precision: str, calibration: str | None
) -> Path:
    """Make the export :func:`exported_model` caches at ``target``."""
    root = target.parent.parent
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        produced = Path(scratch) / target.name
        if precision == "int8":
            from pipeline.models.quantization import calibration_images, quantize_openvino

            fp32 = exported_model(weights, backend, size)
            quantize_openvino(fp32, produced, size, calibration_images(calibration or str(DEFAULT_CALIBRATION)))
        else:
            log.info("exporting %s to %s at %dx%d (once; cached)", weights.name, backend, size[1], size[0])
            _export(weights, Path(scratch), backend, size)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(produced, target)
    return target


def _export(weights: Path, scratch: Path, backend: str, size: tuple[int, int]) -> None:
    """Ultralytics' export of a copy of ``weights`` in ``scratch`` (it writes beside its input)."""
    from ultralytics import YOLO

    staged = scratch / weights.name
    shutil.copy2(weights, staged)
    try:
        options = {"simplify": True} if backend == "onnx" else {}
        # torch.jit's warnings while it traces the model are hidden by pipeline.runtime.configure_output.
        YOLO(str(staged)).export(format=backend, imgsz=size, dynamic=False, verbose=False, **options)
    except Exception as exc:  # Ultralytics wraps export failures in many types
        reason = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise ModelError(f"{weights}: export to {backend} failed ({reason}); try --backend torch") from None
