"""The writers of one source's run, made when it starts: its run folder's outputs (with its live
viewers and event streams), its sink in the store, and, at its end, its plots."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pipeline.annotators.frame import FrameAnnotator
from pipeline.annotators.scaled import video_size
from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.io.live.metrics import RunMetrics
from pipeline.io.outputs.folders import output_error
from pipeline.io.outputs.intervals_file import file_start_epoch_s
from pipeline.io.outputs.plots import write_plots
from pipeline.io.outputs.records import RecordStamp
from pipeline.io.outputs.run_outputs import FrameViewer, RunOutputs
from pipeline.io.publish.publisher import Publisher
from pipeline.io.sources.files import FrameSource
from pipeline.models import Detector
from pipeline.run.frame_pipeline import FramePipeline
from pipeline.run.summary import RunSummary
from pipeline.store.sink import StoreSink


def metrics_of(viewers: Sequence[FrameViewer]) -> Iterator[RunMetrics]:
    """The Prometheus metrics a live view serves (``--serve``), if any."""
    return (metrics for viewer in viewers if (metrics := getattr(viewer, "metrics", None)) is not None)


def write_plots_of(core: FramePipeline, first_frame: np.ndarray | None, out_dir: Path) -> PipelineError | None:
    """Write the plots; the error to report if the disk refused them. No origin-destination plot
    with a warm-up: the movement counters ran over it too."""
    movements = core.analytics.movements_view() if core.tally is None else None
    try:
        levels = core.analytics.level_columns
        write_plots(out_dir / "counts.csv", core.heatmap, first_frame, out_dir, movements, levels)
    except OSError as exc:
        return output_error(out_dir, exc)
    return None


def outputs_for(
    config: Config,
    source: FrameSource,
    detector: Detector,
    core: FramePipeline,
    out_dir: Path,
    viewers: Sequence[FrameViewer],
    publish: bool,
    stamp: RecordStamp,
    first_segment: int,
    store: StoreSink | None,
) -> RunOutputs:
    """The run folder's writers for one source, with its live viewers, its store and (``publish``) event
    streams, from segment ``first_segment`` on, its events stamped by ``stamp``."""
    return RunOutputs(
        out_dir,
        config.output,
        core.columns,
        source.fps,
        video_size((source.width, source.height), config.output.video_width),
        FrameAnnotator(config.draw, show_masks=detector.task == "segment"),
        viewers,
        name=source.name,
        column_kinds=core.analytics.column_kinds,
        parking=core.analytics.parking is not None,
        publisher=Publisher(config, source.name, out_dir, next(metrics_of(viewers), None), stamp) if publish else None,
        stamp=stamp,
        first_segment=first_segment,
        store=store,
    )


def store_for(
    target: str | None, config: Config, source: FrameSource, core: FramePipeline, summary: RunSummary, run_id: str
) -> StoreSink | None:
    """The run's sink in the store ``target`` (None: no store), timed as ``intervals.csv`` is: from a
    file's start time if it has one, else from the clock at the first frame."""
    if target is None:
        return None
    parking = core.analytics.parking
    return StoreSink(
        target,
        config.publish.camera or source.name,
        summary.source,
        str(Path(summary.output_dir).resolve()),
        None if source.live else file_start_epoch_s(source, config.source.start_time),
        slots=len(parking.occupied) if parking is not None else None,
        run_id=run_id,
        replace=config.output.overwrite,
    )
