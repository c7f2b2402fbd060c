#!/usr/bin/env bash
# One short GPU check, for a machine with an NVIDIA GPU (e.g. the lent device): installs the project
# (nothing beyond it), prints the GPU, runs the end-to-end pipeline on the GPU (PyTorch fp16) and
# the benchmark table for the highway clip, detect and segment. About 5 minutes.
#   bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export YOLO_OFFLINE=1
python3 -m venv .venv-gpu
.venv-gpu/bin/python -m pip install --quiet --upgrade pip
.venv-gpu/bin/python -m pip install --quiet -e '.[dev]' shapely
.venv-gpu/bin/python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible to torch"
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
PY
.venv-gpu/bin/vpipe run sample_videos/highway.mp4 --config configs/traffic.yaml --device cuda --output runs/gpu_highway --overwrite
.venv-gpu/bin/python - <<'PY'
import json
s = json.load(open("runs/gpu_highway/summary.json"))
print({k: s[k] for k in ("processing_fps", "backend", "device", "input_size", "peak_rss_mb", "peak_gpu_mb")})
assert s["backend"] == "torch" and s["device"].startswith("cuda"), s
PY
.venv-gpu/bin/python scripts/benchmark.py --clips highway --tasks detect,segment --repeats 2 --device cuda:0 \
    --output runs/benchmark/benchmark_gpu.json
