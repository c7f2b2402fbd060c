"""Devices and backends through the real CLI on this GPU-less machine: a device that is missing, or
that the backend would not really run on, is refused in one line with exit code 2 before any
output is written; the summary names the device inference ran on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.config import ModelConfig
from pipeline.errors import ModelError
from pipeline.models import REPO_MODELS_DIR, Detector, resolve_model
from tests.conftest import run_vpipe


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--device", "cuda"], "--device cuda: PyTorch finds no CUDA GPU on this machine; use --device cpu"),
        (["--device", "cuda:3"], "--device cuda:3: PyTorch finds no CUDA GPU on this machine"),
        (["--device", "0"], "--device 0: PyTorch finds no CUDA GPU on this machine"),
        (["--device", "mps"], "--device mps: Apple's Metal (MPS) is not available on this machine"),
        (["--device", "cuda", "--backend", "openvino"], "--device cuda: the openvino backend runs on the CPU only"),
        (["--device", "cuda", "--backend", "onnx"], "--device cuda: ONNX Runtime here has no CUDA support"),
        (["--device", "mps", "--backend", "onnx"], "--device mps: ONNX Runtime here has no MPS support"),
        (
            ["--device", "cuda", "--model", "yolo11n-seg_int8_openvino_model"],
            "--device cuda: the openvino backend runs on the CPU",
        ),
    ],
)
def test_a_device_that_cannot_run_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, street: Path, flags: list[str], expected: str
):
    out = tmp_path / "out"
    result = run_vpipe("run", street, "--output", out, "--max-frames", "5", *flags)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"vpipe: error: {expected}") and result.stderr.count("\n") == 1
    assert not out.exists()


def test_batch_refuses_a_missing_device_before_starting(tmp_path: Path, street: Path):
    out = tmp_path / "out"
    result = run_vpipe("batch", street, "--output", out, "--device", "cuda:1", "--num-gpus", "1")
    assert result.returncode == 2
    assert (
        result.stderr
        == "vpipe: error: --device cuda:1: PyTorch finds no CUDA GPU on this machine; use --device cpu (or auto)\n"
    )
    assert not out.exists()


def test_the_summary_names_the_device_inference_ran_on(tmp_path: Path, street: Path):
    out = tmp_path / "out"
    result = run_vpipe("run", street, "--output", out, "--max-frames", "5", "--imgsz", "320", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["device"], summary["backend"]) == ("cpu", "openvino")


def test_resolution_decides_without_loading_and_names_the_export_that_runs(tmp_path: Path):
    """The spec's export path is where the export is then built (so the cache keys are one)."""
    weights = tmp_path / "yolo11n.pt"
    shutil.copy(REPO_MODELS_DIR / "yolo11n.pt", weights)
    config = ModelConfig(weights=str(weights), backend="onnx", device="auto")
    spec = resolve_model(config, frame_size=(640, 360))
    assert (spec.backend, spec.device, spec.precision, spec.input_size) == ("onnx", "cpu", "fp32", (384, 640))
    assert spec.needs_export and spec.export_path is not None and not spec.export_path.exists()
    assert Detector(config, frame_size=(640, 360)).model_path == str(spec.export_path)
    assert spec.export_path.exists()
    with pytest.raises(ModelError, match="--device cuda:0: PyTorch finds no CUDA GPU"):
        resolve_model(ModelConfig(device="cuda:0", backend="torch"), frame_size=(640, 360))
