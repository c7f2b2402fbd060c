#!/usr/bin/env bash
# Cameras per GPU machine, in one short run (about 7 minutes on a 16-core H100/H200 machine):
#   1. the GPU and the CPU;
#   2. the model alone, several cameras' 1080p frames per call, fp16 (scripts/batch_rate.py): the
#      forward pass alone and the whole batched call (bytes up, letterbox, NMS, boxes back);
#   3. scripts/fleet_bench.py on cuda: N copies of highway.mp4 at 1080p in one vpipe run, without the
#      video and with it, --detect-every auto, each camera's crossings against the clip run alone;
#   4. the largest N over 8 worker processes: one shared inference stage against a model per worker.
# Every table is printed and written to $RESULTS (default runs/gpu_fleet). Assumes the project's
# .venv (or a python3 with it installed, PYTHON=...) with CUDA torch; nothing is downloaded.
#
#   bash scripts/gpu_fleet.sh
#   RESULTS=$OUT CAMERAS="1 8 16 24" bash scripts/gpu_fleet.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
RESULTS=${RESULTS:-runs/gpu_fleet}
CAMERAS=${CAMERAS:-1 8 16}
export YOLO_OFFLINE=1 YOLO_VERBOSE=false PYTHONPATH=$PWD
mkdir -p "$RESULTS"
step() { echo "== $* ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$RESULTS/gpu_fleet.txt"; }

step "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; grep -m1 "model name" /proc/cpuinfo; } \
    2>&1 | tee -a "$RESULTS/gpu_fleet.txt"
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA'; print('torch', torch.__version__)" \
    2>&1 | tee -a "$RESULTS/gpu_fleet.txt" || exit 1

step "the 1080p clip (made once)"
timeout 120 "$PYTHON" scripts/fleet_bench.py --cameras 1 --no-video --work "$RESULTS/work" --repeats 1 \
    --vpipe-args "--device cuda" 2>&1 | tail -4 | tee -a "$RESULTS/gpu_fleet.txt"

step "model alone, batched, fp16"
timeout 120 "$PYTHON" scripts/batch_rate.py --device cuda --clip "$RESULTS/work/highway_1920x1080.mp4" \
    --batches 1 8 32 64 --repeats 20 2>&1 | tee -a "$RESULTS/gpu_fleet.txt"

step "fleet on cuda, no video, --detect-every auto"
# shellcheck disable=SC2086  # CAMERAS is a list of numbers
timeout 150 "$PYTHON" scripts/fleet_bench.py --cameras $CAMERAS --no-video --detect-every auto --work "$RESULTS/work" \
    --vpipe-args "--device cuda" 2>&1 | tail -8 | tee -a "$RESULTS/gpu_fleet.txt"

step "fleet on cuda, with the video, --detect-every auto"
# shellcheck disable=SC2086
timeout 120 "$PYTHON" scripts/fleet_bench.py --cameras ${CAMERAS% *} --detect-every auto --work "$RESULTS/work" \
    --vpipe-args "--device cuda" 2>&1 | tail -8 | tee -a "$RESULTS/gpu_fleet.txt"
step "fleet on cuda, 8 workers: one shared inference stage against a model per worker, no video"
timeout 110 "$PYTHON" scripts/fleet_bench.py --cameras "${CAMERAS##* }" --no-video --detect-every auto \
    --work "$RESULTS/work" --vpipe-args "--device cuda" \
    --variants "--workers 8 --shared-inference true" "--workers 8 --shared-inference false" \
    2>&1 | tail -6 | tee -a "$RESULTS/gpu_fleet.txt"
step "done"
