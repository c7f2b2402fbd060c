"""CPU cost of each pipeline stage per frame, measured one stage at a time on the same frames.

Where ``benchmark.py`` says how fast the whole pipeline is, this says where its CPU goes: decode,
inference, tracking, counting, drawing and H.264 encoding, each timed alone (wall and process CPU
time per frame, medians over several passes). On a machine with few cores the end-to-end rate is
bounded by the sum of the CPU columns divided by the cores, whatever the threading.

Usage::

    python scripts/stage_costs.py sample_videos/highway.mp4 --config configs/traffic.yaml
    python scripts/stage_costs.py runs/benchmark/street_320x240.mp4 --config runs/benchmark/street_320x240.yaml
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "false")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def timed(passes: int, step: Callable[[int], Any], count: int) -> tuple[float, float]:
    """Median (wall ms, CPU ms) per item of ``step(i)`` for i in range(count), over ``passes`` passes."""
    walls, cpus = [], []
    for _ in range(passes):
        wall, cpu = time.perf_counter(), time.process_time()
        for index in range(count):
            step(index)
        walls.append((time.perf_counter() - wall) * 1000 / count)
        cpus.append((time.process_time() - cpu) * 1000 / count)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    from pipeline.analytics import Analytics
    from pipeline.annotators.frame import FrameAnnotator
    from pipeline.annotators.scaled import draw_at_size, video_size
    from pipeline.cli_args import add_model_flags, model_overrides
    from pipeline.config import load_config
    from pipeline.io.outputs.sinks import H264VideoSink
    from pipeline.io.sources.files import open_source
    from pipeline.models import Detector
    from pipeline.runtime import set_torch_threads
    from pipeline.tracking import ByteTrackTracker

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a video file")
    parser.add_argument("--config", help="run config (lines, zones, model)")
    parser.add_argument("--frames", type=int, default=150, help="frames to time (default 150)")
    parser.add_argument("--passes", type=int, default=3, help="passes per stage; medians are reported")
    parser.add_argument("--video-width", type=int, help="output.video_width (default: the config's)")
    add_model_flags(parser)
    args = parser.parse_args()

    source = open_source(args.source, max_frames=args.frames)
    images = [frame.image for frame in source]
    rate = source.fps  # exact (a Fraction) for the encoder
    fps = float(rate)
    height, width = images[0].shape[:2]
    overrides = {"model": model_overrides(args)}
    if args.video_width is not None:
        overrides["output"] = {"video_width": args.video_width}
    config = load_config(args.config, overrides).in_pixels(width, height)
    size = video_size((width, height), config.output.video_width)
    count = len(images)

    def decode(_: int) -> None:
        for _frame in open_source(args.source, max_frames=count):
            pass

    detector = Detector(config.model, frame_size=(width, height))
    set_torch_threads(detector.backend)

    def new_tracker() -> ByteTrackTracker:
        return ByteTrackTracker(config.tracker, fps=fps, class_names=detector.names)

    detections = [detector(image) for image in images]
    tracked: list[Any] = []
    views: list[Any] = []

    def track(index: int) -> None:
        nonlocal tracker
        if index == 0:
            tracker = new_tracker()
            tracked.clear()
        tracked.append(tracker.update(detections[index]))

    def count_(index: int) -> None:
        nonlocal analytics
        if index == 0:
            analytics = Analytics.for_run(config)
            views.clear()
        analytics.update(tracked[index], index, index / fps)
        analytics.row()
        views.append(analytics.view())

    annotator = FrameAnnotator(config.draw, show_masks=detector.task == "segment")
    copies = [image.copy() for image in images]
    drawn: list[Any] = [None] * count

    def draw(index: int) -> None:  # as the run draws: scaled to the video's size first, if smaller
        copies[index][:] = images[index]
        drawn[index] = draw_at_size(annotator, copies[index], tracked[index], index / fps, views[index], size)

    tracker, analytics = new_tracker(), Analytics.for_run(config)
    rows: list[tuple[str, float, float]] = []
    wall, cpu = timed(args.passes, decode, 1)
    rows.append(("decode", wall / count, cpu / count))
    rows.append(("detect", *timed(args.passes, lambda i: detector(images[i]), count)))
    rows.append(("track", *timed(args.passes, track, count)))
    rows.append(("count", *timed(args.passes, count_, count)))
    rows.append(("draw", *timed(args.passes, draw, count)))
    with tempfile.TemporaryDirectory() as work:
        encode_runs = []
        for run in range(args.passes):
            with H264VideoSink.for_output(Path(work) / f"{run}.mp4", *size, rate, config.output) as sink:
                encode_runs.append(timed(1, lambda i, sink=sink: sink.write(drawn[i]), count))
        rows.append(("encode", *map(statistics.median, zip(*encode_runs, strict=True))))
    print(f"{args.source} at {width}x{height} (video {size[0]}x{size[1]}), {count} frames, {detector.describe()}")
    print(f"{'stage':<8} {'wall ms':>8} {'CPU ms':>8}")
    for name, wall, cpu in rows:
        print(f"{name:<8} {wall:8.2f} {cpu:8.2f}")
    total_cpu = sum(cpu for _, _, cpu in rows)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    print(f"{'sum':<8} {sum(w for _, w, _ in rows):8.2f} {total_cpu:8.2f}")
    print(f"CPU-bound ceiling on {cores} cores: {1000 * cores / total_cpu:.1f} FPS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
