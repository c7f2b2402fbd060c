"""Frames per second of the model alone, several cameras' frames per call (pipeline/models/torch_batch.py).

For each batch size, two rates over the same frames (1080p frames of highway.mp4 by default):

- model: the network's forward pass alone, on a batch already on the device;
- call: :class:`BatchedTorchDetector` end to end: the frames' bytes up, letterbox, normalisation,
  forward pass, NMS, boxes back to the CPU.

On a GPU it runs in fp16 and waits for the device before reading the clock. Medians over ``--repeats``.

Usage::

    python scripts/batch_rate.py --device cuda --batches 1 8 32 64
    python scripts/batch_rate.py --device cpu --batches 1 4 --repeats 3     # checks the script runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "false")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    import numpy as np
    import torch
    from ultralytics import YOLO

    from pipeline.io.sources.files import open_source
    from pipeline.models.resolve import REPO_MODELS_DIR, input_size
    from pipeline.models.torch_batch import BatchedTorchDetector, letterbox_batch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default=str(REPO / "runs" / "fleet_bench" / "highway_1920x1080.mp4"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per batch size")
    args = parser.parse_args()
    if not Path(args.clip).exists():
        print(f"error: {args.clip}: no such clip (scripts/fleet_bench.py makes it)", file=sys.stderr)
        return 2
    source = open_source(args.clip, max_frames=max(args.batches))
    frames = [frame.image for frame in source]
    height, width = frames[0].shape[:2]
    size = input_size(width, height, 640)
    device = torch.device(args.device)
    half = device.type == "cuda"
    predictor = YOLO(str(REPO_MODELS_DIR / "yolo11n.pt"), task="detect")
    model = predictor.model.to(device).eval()
    model = model.half() if half else model
    detector = BatchedTorchDetector(model, predictor.names, size, conf=0.1, iou=0.7, class_ids=[2, 3, 5, 7], half=half)

    def wait() -> None:
        if half:
            torch.cuda.synchronize(device)

    print(f"{args.device} ({torch.cuda.get_device_name(device) if half else 'CPU'}), input {size}, {width}x{height}")
    print(f"{'batch':>6} {'model FPS':>10} {'call FPS':>10}")
    for batch in args.batches:
        images = [frames[i % len(frames)] for i in range(batch)]
        blob = letterbox_batch(torch.from_numpy(np.stack(images)).to(device), size, detector.dtype)
        rates = {"model": [], "call": []}
        with torch.inference_mode():
            for _ in range(3):  # warm-up (kernels chosen, memory pools grown)
                model(blob), detector(images)
            wait()
            for _ in range(args.repeats):
                start = time.perf_counter()
                model(blob)
                wait()
                rates["model"].append(batch / (time.perf_counter() - start))
                start = time.perf_counter()
                detector(images)
                wait()
                rates["call"].append(batch / (time.perf_counter() - start))
        print(
            f"{batch:>6} {statistics.median(rates['model']):>10.1f} {statistics.median(rates['call']):>10.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
