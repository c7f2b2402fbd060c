"""What ``summary.json`` says of one source's run: its header before the first frame, and the summary
completed with the rates, memory and every count so far (written while running and at the end)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pipeline.io.outputs.intervals_file import IntervalsFile
from pipeline.io.outputs.run_folder import run_identity
from pipeline.io.publish.publisher import Publisher
from pipeline.io.sources.files import FrameSource
from pipeline.io.urls import mask_credentials
from pipeline.memory import peak_gpu_mb, peak_rss_mb
from pipeline.models import Detector
from pipeline.run.frame_pipeline import FramePipeline
from pipeline.run.summary import ModelInfo, RunSummary, SlicePart


def summary_header(
    source: FrameSource, detector: Detector, core: FramePipeline, out_dir: Path, part: SlicePart | None, run_id: str
) -> RunSummary:
    """What ``summary.json`` says of a run before its first frame: the source, the model, the tracker,
    the process and what the run is of."""
    return RunSummary(
        source.display_name,
        round(float(source.fps), 4),
        source.width,
        source.height,
        ModelInfo.from_json(detector.describe()),
        core.config.model.detect_every,
        str(out_dir),
        part=part,
        tracker=core.tracker.describe(),
        run_id=run_id,
        identity=run_identity(core.config, source),
    )


def closing_summary(
    summary: RunSummary,
    detector: Detector,
    core: FramePipeline,
    intervals: IntervalsFile,
    publisher: Publisher | None,
    elapsed_s: float,
    end_s: float,
    status: str,
    error: str | None,
    detect_every_auto: dict[str, Any] | None = None,
    motion_gate: dict[str, int] | None = None,
) -> RunSummary:
    """``summary`` completed with the rates, memory, status and every count so far (``end_s``: the
    end of the processed video, in the run's time)."""
    segments = [*summary.segments[:-1], {**summary.segments[-1], "status": status}] if summary.segments else []
    return dataclasses.replace(
        summary,
        segments=segments,
        model=ModelInfo.from_json(detector.describe()),  # what a trial at the start chose
        processing_fps=round(summary.frames / elapsed_s, 2) if elapsed_s > 0 else 0.0,
        status=status,
        error=mask_credentials(error) if error else None,
        counted=True,
        counts=core.counts(end_s),
        intervals=intervals.summary(),
        tracks_total=core.tracks.total,
        peak_rss_mb=peak_rss_mb(),
        peak_gpu_mb=peak_gpu_mb(detector.device),
        publish=publisher.summary() if publisher is not None and publisher.sinks else None,
        detect_every_auto=detect_every_auto,
        motion_gate=motion_gate,
    )
