"""Post-training int8 quantization of an OpenVINO export (NNCF), for CPUs with int8 dot products.

The detection head (its sigmoid and box decoding, DFL) stays in float, as Ultralytics' own int8
export does: quantizing it costs box precision for little speed.

Calibration only sets activation ranges, so a few dozen frames of the kind of scene the model will
see are enough. The default set, ``models/calibration/``, is frames of two of the bundled clips
(highway and parking lot; the street clip is held out). ``calibration`` takes the user's own
footage (any source vpipe reads) for a model fitted to their scene.

Example::

    images = calibration_images("models/calibration")
    quantize_openvino(Path("fp32/yolo11n_openvino_model"), Path("int8/yolo11n_openvino_model"), (384, 640), images)
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
from pathlib import Path

import numpy as np

from pipeline.errors import ModelError
from pipeline.models.preprocess import letterbox_blob

log = logging.getLogger(__name__)

CALIBRATION_FRAMES = 300
"""Frames taken (evenly spread) from a user's calibration source."""

INT8_CPU_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
"""CPU features that make int8 inference faster than fp32 (without them int8 may be slower)."""


def cpu_has_int8_dot_product(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU reports VNNI or AMX int8 instructions (Linux; False where unknown)."""
    try:
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in INT8_CPU_FLAGS)


def select_precision(precision: str, backend: str, device: str) -> str:
    """Resolve ``auto``: int8 for OpenVINO on a CPU with int8 dot products, else fp32.

    Raises:
        ModelError: int8 was asked for with a backend other than OpenVINO.
    """
    if precision == "auto":
        return "int8" if backend == "openvino" and device == "cpu" and cpu_has_int8_dot_product() else "fp32"
    if precision == "int8" and backend != "openvino":
        raise ModelError(f"precision int8 needs the openvino backend (this run uses {backend})")
    return precision


def calibration_images(source: str, limit: int = CALIBRATION_FRAMES) -> list[np.ndarray]:
    """Up to ``limit`` BGR frames spread evenly over ``source`` (a video, image folder or glob).

    Raises:
        SourceError: The source cannot be opened.
        ModelError: It gave no frames.
    """
    from pipeline.io.sources.files import open_source

    frames = open_source(source)
    step = max(1, (frames.frame_count or limit) // limit)
    images = []
    try:
        for frame in frames:
            if frame.frame_index % step == 0:
                images.append(frame.image)
            if len(images) >= limit:
                break
    finally:
        frames.close()
    if not images:
        raise ModelError(f"{source}: no frames to calibrate int8 on")
    return images


def quantize_openvino(source_dir: Path, target_dir: Path, size: tuple[int, int], images: list[np.ndarray]) -> None:
    """Quantize the OpenVINO model in ``source_dir`` (a static ``size`` export) to int8 in ``target_dir``.

    Raises:
        ModelError: NNCF is missing or quantization failed.
    """
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise ModelError(f"int8 needs NNCF and OpenVINO ({exc}); pip install nncf, or use --precision fp32") from None
    nncf.set_log_level(logging.ERROR)
    xml = next(source_dir.glob("*.xml"))
    model = ov.Core().read_model(str(xml))
    operations = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in operations if op.get_type_name() == "Sigmoid"]
    head = sigmoids[-1].split("/", 1)[0] if sigmoids else None
    ignored = [
        op.get_friendly_name()
        for op in operations
        if op.get_type_name() == "Sigmoid"
        or (head is not None and op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl")))
    ]
    log.info("quantizing %s to int8 at %dx%d (once; cached)", xml.stem, size[1], size[0])
    # NNCF draws its own progress bars (rich, on the current stdout) with no option to turn them off.
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            quantized = nncf.quantize(
                model,
                nncf.Dataset(images, lambda image: letterbox_blob(image, size)),
                preset=nncf.QuantizationPreset.MIXED,
                subset_size=len(images),
                ignored_scope=nncf.IgnoredScope(names=ignored, validate=False),
            )
    except Exception as exc:  # NNCF raises many types
        raise ModelError(f"{xml}: int8 quantization failed ({exc}); use --precision fp32") from None
    target_dir.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(target_dir / xml.name), compress_to_fp16=False)
    shutil.copy2(source_dir / "metadata.yaml", target_dir / "metadata.yaml")
