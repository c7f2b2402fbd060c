"""CPU cost per frame of tracking and counting alone (no model, no video), on a clip's detections.

The detector runs once (its detections can be saved with ``--detections`` and reused), then the
tracker and the analytics replay them ``--passes`` times; prints the median process CPU time per
frame (less moved than wall time by other processes on a busy machine).
``--repo`` imports the pipeline from another checkout, to compare two versions on the same
detections.

Usage::

    python scripts/tracking_cost.py sample_videos/highway.mp4 --config configs/traffic.yaml --detections /tmp/hw.pkl
    python scripts/tracking_cost.py sample_videos/highway.mp4 --config configs/traffic.yaml --detections /tmp/hw.pkl \\
        --repo ../main
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--detections", type=Path, help="detections file: written if missing, else reused")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--passes", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, str(args.repo.resolve()))
    import numpy as np
    import supervision as sv

    from pipeline.analytics import Analytics
    from pipeline.config import load_config
    from pipeline.tracking import ByteTrackTracker

    config = load_config(args.config)
    if args.detections is not None and args.detections.exists():
        fps, names, frames = pickle.loads(args.detections.read_bytes())
    else:
        from pipeline.io.sources.files import open_source
        from pipeline.models import Detector

        source = open_source(str(args.clip))
        detector = Detector(config.model, frame_size=(source.width, source.height))
        frames = [(d.xyxy, d.confidence, d.class_id) for d in (detector(frame.image) for frame in source)]
        fps, names = float(source.fps), detector.names
        if args.detections is not None:
            args.detections.write_bytes(pickle.dumps((fps, names, frames)))
    detections = [
        sv.Detections(xyxy=np.asarray(x, float), confidence=np.asarray(c, float), class_id=np.asarray(k, int))
        for x, c, k in frames
    ]
    per_frame_ms = []
    for _ in range(args.passes):
        tracker, analytics = ByteTrackTracker(config.tracker, fps=fps, class_names=names), Analytics.for_run(config)
        start = time.process_time()
        for index, frame in enumerate(detections):
            analytics.update(tracker.update(frame), index, index / fps)
        per_frame_ms.append((time.process_time() - start) * 1000 / len(detections))
    print(
        f"{args.repo.resolve()}: tracking + counting {statistics.median(per_frame_ms):.3f} ms CPU per frame (median of "
        f"{args.passes} passes over {len(detections)} frames; all: {', '.join(f'{v:.3f}' for v in per_frame_ms)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
