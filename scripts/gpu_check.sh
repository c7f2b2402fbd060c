#!/usr/bin/env bash
# One short GPU check for a machine with an NVIDIA GPU: prints the GPU, runs the pipeline end to end on
# it (PyTorch fp16) and checks its summary, then the benchmark table for the highway clip, detect and
# segment. About 5 minutes on an H200 with the default one repetition (each measurement is a fresh
# process that spends about 10 s on CUDA's first inference). docs/gpu.md has the results.
#
#   bash scripts/gpu_check.sh                 # online: a venv (.venv-gpu) with the project and its dependencies
#   WHEELS=.whl bash scripts/gpu_check.sh     # offline: the Python already there (it must hold a CUDA torch)
#                                             # plus the wheels in .whl/ for what it lacks, in a scratch folder
#
# Environment: PYTHON (the offline interpreter, default python3), WHEELS (a folder of wheels: offline mode),
# REPEATS (benchmark repetitions, default 1), RESULTS (where summary.json and the benchmark JSONs are
# copied, default runs/gpu_check). Offline, the wheels are installed without their dependencies, so the
# folder must hold every package the Python lacks (on the lent H200: ultralytics, supervision, pydeprecate,
# defusedxml, lap, av, shapely).
set -euo pipefail
cd "$(dirname "$0")/.."
export YOLO_OFFLINE=1 PYTHONUNBUFFERED=1
repeats=${REPEATS:-1}
results=${RESULTS:-runs/gpu_check}
mkdir -p "$results"

if [[ -n "${WHEELS:-}" ]]; then
    python=${PYTHON:-python3}
    site=$(mktemp -d)
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$WHEELS"/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
else
    python3 -m venv .venv-gpu
    .venv-gpu/bin/python -m pip install --quiet --upgrade pip
    .venv-gpu/bin/python -m pip install --quiet -e '.[dev]'
    python=.venv-gpu/bin/python
fi
# Run from the source tree (`python -m pipeline` is `vpipe`), so the offline mode needs no install step.
"$python" - <<'PY'
import importlib.util
import sys

needed = ("torch", "ultralytics", "supervision", "av", "lap", "shapely", "cv2", "yaml")
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"gpu_check: missing Python packages: {', '.join(missing)} (offline: put their wheels in WHEELS)")
import torch

if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA GPU visible to torch")
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
PY

rm -rf runs/gpu_highway
"$python" -m pipeline run sample_videos/highway.mp4 --config configs/traffic.yaml --device cuda \
    --output runs/gpu_highway --overwrite
cp runs/gpu_highway/summary.json "$results/summary.json"
"$python" - <<'PY'
import json
import sys

import yaml

s = json.load(open("runs/gpu_highway/summary.json"))
print({k: s.get(k) for k in ("processing_fps", "backend", "device", "precision", "input_size", "peak_rss_mb",
                             "peak_gpu_mb", "frames", "status")})
truth = yaml.safe_load(open("tests/data/highway_ground_truth.yaml"))["lines"]["main"]
ours = s["lines"]["main"]
print(f"count main line: in {ours['in_total']} out {ours['out_total']} "
      f"(hand-counted: in {truth['in']} out {truth['out']})")
problems = [
    f"{key} is {s.get(key)!r}"
    for key, ok in (
        ("backend", s.get("backend") == "torch"),
        ("device", str(s.get("device")).startswith("cuda")),
        ("precision", s.get("precision") == "fp16"),
        ("status", s.get("status") == "completed"),
        ("frames", s.get("frames") == 335),
        ("peak_gpu_mb", (s.get("peak_gpu_mb") or 0) > 0),
    )
    if not ok
]
if problems:
    sys.exit("gpu_check: the GPU run's summary is wrong: " + "; ".join(problems))
PY

# One benchmark per task, each with its own JSON, so that one that fails or runs out of time keeps the other.
for task in detect segment; do
    "$python" scripts/benchmark.py --clips highway --tasks "$task" --repeats "$repeats" --device cuda:0 \
        --output "$results/benchmark_gpu_$task.json"
done
echo "gpu_check: passed; results in $results"
