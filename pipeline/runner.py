"""Wires the stages together and runs them over one source.

``source -> Detector -> ByteTrackTracker -> Analytics -> FrameAnnotator -> sinks``

Everything that can fail on bad input (config, source, model, geometry) is checked before the
output folder is touched; once running, every sink flushes per frame and is closed on any exit,
Ctrl-C included, and ``summary.json`` is always written with the run's status.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.analytics import Analytics
from pipeline.annotators.frame import FrameAnnotator
from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.io.sinks import CountsCsvSink, H264VideoSink, JsonlSink, write_json_atomic
from pipeline.io.sources import FrameSource, open_source
from pipeline.models import Detector
from pipeline.tracking import ByteTrackTracker


def output_dir_for(config: Config, source: FrameSource) -> Path:
    """``output.dir`` if set, else ``runs/<source name>``."""
    return Path(config.output.dir) if config.output.dir else Path("runs") / source.name


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
        detector = Detector(config.model, origin=config.origin)
        tracker = ByteTrackTracker(config.tracker, fps=float(source.fps))
        # Keep a vanished track's counting state a little longer than ByteTrack can revive it.
        analytics = Analytics(config.lines, config.zones, forget_after_s=config.tracker.track_buffer_s + 1.0)
        annotator = FrameAnnotator(config.draw, show_masks=detector.task == "segment")

        out_dir = output_dir_for(config, source)
        out_dir.mkdir(parents=True, exist_ok=True)
        video = (
            stack.enter_context(
                H264VideoSink(
                    out_dir / "annotated.mp4",
                    source.width,
                    source.height,
                    source.fps,
                    crf=config.output.crf,
                    preset=config.output.preset,
                )
            )
            if config.output.video
            else None
        )
        counts = stack.enter_context(
            CountsCsvSink(out_dir / "counts.csv", [line.name for line in config.lines], [z.name for z in config.zones])
        )
        events = stack.enter_context(JsonlSink(out_dir / "events.jsonl"))

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
            "output_dir": str(out_dir),
            "status": "running",
        }
        tracks_total = 0
        last_track_id = 0
        last_timestamp_s = -1.0 / float(source.fps)
        started = time.perf_counter()
        bar = tqdm(total=source.frame_count, unit="frame", disable=not progress, dynamic_ncols=True, leave=True)
        stack.callback(bar.close)

        def finish(status: str, error: str | None = None) -> None:
            elapsed = time.perf_counter() - started
            summary.update(
                duration_s=round(last_timestamp_s + 1.0 / float(source.fps), 4) if summary["frames"] else 0.0,
                processing_fps=round(summary["frames"] / elapsed, 2) if elapsed > 0 else 0.0,
                status=status,
                **analytics.summary(),
                tracks_total=tracks_total,
            )
            if error:
                summary["error"] = error
            write_json_atomic(out_dir / "summary.json", summary)

        try:
            for frame in source:
                tracked = tracker.update(detector(frame.image))
                crossings = analytics.update(tracked, frame.frame_index, frame.timestamp_s)
                if tracked.tracker_id is not None and len(tracked):
                    # IDs are issued in increasing order, so new tracks are the ones above the last seen.
                    new_ids = tracked.tracker_id[tracked.tracker_id > last_track_id]
                    tracks_total += len(new_ids)
                    last_track_id = max(last_track_id, int(tracked.tracker_id.max()))
                counts.write(
                    frame.frame_index,
                    frame.timestamp_s,
                    len(tracked),
                    analytics.line_counts(),
                    analytics.zone_counts(),
                )
                events.write(crossing.to_record() for crossing in crossings)
                if video is not None:
                    video.write(
                        annotator.annotate(frame.image, tracked, frame.timestamp_s, analytics.lines, analytics.zones)
                    )
                summary["frames"] += 1
                last_timestamp_s = frame.timestamp_s
                bar.update()
        except KeyboardInterrupt:
            finish("interrupted")
        except PipelineError as exc:
            finish("failed", str(exc))
            raise
        else:
            finish("completed")
        return summary
