"""Wires the stages together and runs them over one source.

``source -> Detector -> ByteTrackTracker -> Analytics -> FrameAnnotator -> sinks``

Three threads with small bounded queues between them: decoding, then model + tracking +
analytics + CSV/JSONL (this thread), then drawing + H.264 encoding; each frame is drawn with a
frozen snapshot of the counts on that frame.

Everything that can fail on bad input (config, source, model, geometry) is checked before the
output folder is touched; once running, every sink flushes per frame and is closed on any exit,
Ctrl-C included, and ``summary.json`` is always written with the run's status.
"""

from __future__ import annotations

import resource
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv
from tqdm import tqdm

from pipeline.analytics import Analytics, AnalyticsView
from pipeline.analytics.heatmap import Heatmap
from pipeline.annotators.frame import FrameAnnotator
from pipeline.concurrency import BackgroundWorker, PrefetchIterator
from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.io.plots import write_counts_plot, write_heatmap
from pipeline.io.sinks import CountsCsvSink, H264VideoSink, JsonlSink, write_json_atomic
from pipeline.io.sources import Frame, FrameSource, open_source
from pipeline.models import Detector
from pipeline.tracking import ByteTrackTracker


def output_dir_for(config: Config, source: FrameSource) -> Path:
    """``output.dir`` if set, else ``runs/<source name>``."""
    return Path(config.output.dir) if config.output.dir else Path("runs") / source.name


class _TrackCount:
    """Counts distinct track IDs in O(1) memory: ByteTrack issues IDs in increasing order."""

    def __init__(self) -> None:
        self.total = 0
        self._highest = 0

    def update(self, track_ids: np.ndarray | None) -> None:
        if track_ids is not None and len(track_ids):
            self.total += int((track_ids > self._highest).sum())
            self._highest = max(self._highest, int(track_ids.max()))


def run(config: Config, progress: bool = True) -> dict[str, Any]:
    """Process ``config.source.path`` end to end and write the outputs.

    Args:
        config: A validated run config; ``source.path`` must be set.
        progress: Show a progress bar (frames, FPS, ETA) on stderr.

    Returns:
        The run summary, as written to ``summary.json``. ``status`` is ``completed`` or
        ``interrupted`` (Ctrl-C / SIGTERM; outputs are valid up to the last frame).

    Raises:
        PipelineError: Invalid input, found before any output is written, or a source that fails
            mid-run (outputs are finalized first).
    """
    if not config.source.path:
        raise config.error("source.path", "no source given (pass SOURCE on the command line)")
    source = open_source(config.source.path, fps=config.source.fps, max_frames=config.source.max_frames)
    with ExitStack() as stack:
        stack.callback(source.close)
        config.validate_geometry(source.width, source.height)
        detector = Detector(config.model, frame_size=(source.width, source.height), origin=config.origin)
        detect_every = config.model.detect_every
        tracker = ByteTrackTracker(
            config.tracker, fps=float(source.fps), class_names=detector.names, detect_every=detect_every
        )
        # Keep a vanished track's counting state a little longer than ByteTrack can revive it.
        analytics = Analytics(
            config.lines,
            config.zones,
            forget_after_s=config.tracker.track_buffer_s + 1.0,
            parking=config.parking,
            speed=config.speed,
        )
        annotator = FrameAnnotator(config.draw, show_masks=detector.task == "segment")
        heatmap = Heatmap(source.width, source.height)

        out_dir = output_dir_for(config, source)
        out_dir.mkdir(parents=True, exist_ok=True)
        drawing: BackgroundWorker[tuple[Frame, sv.Detections, AnalyticsView]] | None = None
        if config.output.video:
            video = stack.enter_context(
                H264VideoSink(
                    out_dir / "annotated.mp4",
                    source.width,
                    source.height,
                    source.fps,
                    crf=config.output.crf,
                    preset=config.output.preset,
                )
            )

            def draw_and_encode(item: tuple[Frame, sv.Detections, AnalyticsView]) -> None:
                frame, tracked, view = item
                video.write(annotator.annotate(frame.image, tracked, frame.timestamp_s, view))

            # Entered after the video sink, so it is closed (all frames encoded) before the sink.
            drawing = stack.enter_context(BackgroundWorker(draw_and_encode, maxsize=4))
        counts = stack.enter_context(
            CountsCsvSink(out_dir / "counts.csv", ["frame_index", "timestamp_s", "tracks_active", *analytics.columns])
        )
        events = stack.enter_context(JsonlSink(out_dir / "events.jsonl"))
        parking_log = stack.enter_context(JsonlSink(out_dir / "parking.jsonl")) if analytics.parking else None

        summary: dict[str, Any] = {
            "source": config.source.path,
            "frames": 0,
            "fps": round(float(source.fps), 4),
            "width": source.width,
            "height": source.height,
            "duration_s": 0.0,
            "processing_fps": 0.0,
            "model": detector.weights,
            "task": detector.task,
            "device": detector.device,
            "imgsz": config.model.imgsz,
            "backend": detector.backend,
            "input_size": list(detector.input_size),
            "detect_every": detect_every,
            "output_dir": str(out_dir),
            "status": "running",
        }
        tracks = _TrackCount()
        first_frame: np.ndarray | None = None
        end_s = 0.0
        started = time.perf_counter()
        bar = tqdm(total=source.frame_count, unit="frame", disable=not progress, dynamic_ncols=True, leave=True)
        stack.callback(bar.close)

        def finish(status: str, error: str | None = None) -> None:
            elapsed = time.perf_counter() - started
            if analytics.parking is not None and parking_log is not None:
                parking_log.write(analytics.parking.finish(end_s))
            if drawing is not None:
                drawing.close()  # the frames in flight are drawn and encoded first
            summary.update(
                duration_s=round(end_s, 4),
                processing_fps=round(summary["frames"] / elapsed, 2) if elapsed > 0 else 0.0,
                peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                status=status,
                **analytics.summary(end_s),
                tracks_total=tracks.total,
            )
            if detector.device.startswith("cuda"):
                import torch

                summary["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            if error:
                summary["error"] = error
            write_json_atomic(out_dir / "summary.json", summary)
            if config.output.plots and summary["frames"]:
                counts.close()  # flushed already; closed so the plot reads a complete file
                write_counts_plot(counts.path, out_dir / "counts.png")
                if first_frame is not None:
                    write_heatmap(heatmap, first_frame, out_dir / "heatmap.png")

        frames = PrefetchIterator(source, maxsize=4)
        stack.callback(frames.close)
        try:
            for frame in frames:
                if first_frame is None:
                    first_frame = frame.image.copy()  # the annotator draws on frame.image
                if frame.frame_index % detect_every == 0:
                    tracked = tracker.update(detector(frame.image))
                else:
                    tracked = tracker.predict()
                frame_events = analytics.update(tracked, frame.frame_index, frame.timestamp_s)
                heatmap.update(tracked)
                tracks.update(tracked.tracker_id)
                counts.write(
                    {
                        "frame_index": frame.frame_index,
                        "timestamp_s": frame.timestamp_s,
                        "tracks_active": len(tracked),
                        **analytics.row(),
                    }
                )
                events.write(event.to_record() for event in frame_events)
                if parking_log is not None and analytics.parking is not None:
                    parking_log.write(analytics.parking.pop_intervals())
                if drawing is not None:
                    drawing.submit((frame, tracked, analytics.view()))
                summary["frames"] += 1
                end_s = frame.timestamp_s + 1.0 / float(source.fps)
                bar.update()
        except KeyboardInterrupt:
            finish("interrupted")
        except PipelineError as exc:
            finish("failed", str(exc))
            raise
        else:
            finish("completed")
        return summary
