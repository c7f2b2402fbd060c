"""Wires the stages together and runs them over one or several sources.

``source -> Detector -> FramePipeline (ByteTrack, analytics) -> RunOutputs (drawing, sinks)``

Each source is read on its own thread into a small bounded queue (keeping only the newest frames
for live feeds); a detection thread batches the frames of all sources into one inference call,
while the main thread has each source's :class:`SourceRun` step its
:class:`~pipeline.frame_pipeline.FramePipeline` and write its :class:`~pipeline.io.outputs.RunOutputs`
for the previous batch; drawing and H.264 encoding run on one more thread per source, with a
frozen snapshot of that frame's counts. Sources are opened side by side
(:class:`~pipeline.opening.SourceOpener`) and kept by a :class:`~pipeline.fleet.Fleet`: a slow or
dead camera does not stall the others, and one that connects late joins the run then.

Everything that can fail on bad input (config, source, model, geometry) is checked before the
output folders are touched; once running, every sink flushes per frame and is closed on any exit,
Ctrl-C included, and ``summary.json`` is always written with the run's status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv
from tqdm import tqdm

from pipeline.analytics.parking import model_for_parking
from pipeline.annotators.frame import FrameAnnotator
from pipeline.concurrency import PrefetchIterator
from pipeline.config import Config
from pipeline.detection_stage import DetectionStage
from pipeline.errors import PipelineError, SourceError
from pipeline.fleet import Fleet, SourcesFailed, open_spec, release
from pipeline.frame_pipeline import FramePipeline
from pipeline.io.intervals_file import IntervalsFile
from pipeline.io.metrics import RunMetrics
from pipeline.io.output_dirs import output_error, prepare_output_dir
from pipeline.io.outputs import FrameViewer, RunOutputs
from pipeline.io.plots import write_plots
from pipeline.io.publish import Publisher
from pipeline.io.sinks import write_json_atomic
from pipeline.io.sources import Frame, FrameSource
from pipeline.io.urls import mask_credentials
from pipeline.memory import peak_gpu_mb, peak_rss_mb
from pipeline.models import Detector
from pipeline.opening import SourceOpener
from pipeline.runtime import set_torch_threads

log = logging.getLogger(__name__)

SUMMARY_REFRESH_S = 30.0
"""How often (wall clock) a long run rewrites summary.json, so it is current while running."""


class SourceRun:
    """One source's run after the model: the per-frame core, its outputs and its summary.

    Args:
        config: The run config, geometry in this source's pixels.
        source: The opened source.
        detector: The shared detector (for class names, task and the summary).
        out_dir: This source's output folder.
        viewers: Live views to publish annotated frames to.
        follow_resolution: The geometry was given normalized, so it can follow the source through a
            change of resolution (with pixel geometry such a change stops this source).
    """

    def __init__(
        self,
        config: Config,
        source: FrameSource,
        detector: Detector,
        out_dir: Path,
        viewers: Sequence[FrameViewer] = (),
        follow_resolution: bool = False,
    ) -> None:
        self.config = config
        self.follow_resolution = follow_resolution
        self.source = source
        self.detector = detector
        self.name = source.name
        self.out_dir = out_dir
        self.core = FramePipeline(config, float(source.fps), detector.names, (source.width, source.height))
        prepare_output_dir(out_dir, overwrite=config.output.overwrite)
        self.outputs = RunOutputs(
            out_dir,
            config.output,
            self.core.columns,
            source.fps,
            (source.width, source.height),
            FrameAnnotator(config.draw, show_masks=detector.task == "segment"),
            viewers,
            name=source.name,
            parking=self.core.analytics.parking is not None,
            publisher=Publisher(config, source.name, out_dir, next(_metrics_of(viewers), None)),
        )
        self.intervals = IntervalsFile.for_run(out_dir, config, source, self.core.analytics)
        self._first_frame: np.ndarray | None = None
        self.last_frame_index = -1
        self._end_s = 0.0
        self._started = time.perf_counter()
        self._last_refresh = time.monotonic()
        self.finished = False
        self.summary: dict[str, Any] = {
            "source": source.display_name,
            "frames": 0,
            "fps": round(float(source.fps), 4),
            "width": source.width,
            "height": source.height,
            "duration_s": 0.0,
            "processing_fps": 0.0,
            **detector.describe(),
            "detect_every": self.core.detect_every,
            "tracker": self.core.tracker.describe(),
            "output_dir": str(out_dir),
            "status": "running",
            "frames_dropped": 0,
            "frames_skipped": 0,
            "reconnects": 0,
        }

    def needs_detection(self, frame: Frame) -> bool:
        return self.core.needs_detection(frame)

    def process(self, frame: Frame, detections: sv.Detections | None) -> None:
        """Track, count, write and queue for drawing one frame (``detections`` None: a skipped frame)."""
        if frame.image.shape[1::-1] != self.core.frame_size and self._first_frame is not None:
            self._resolution_changed(frame.image.shape[1], frame.image.shape[0])
        if self._first_frame is None:
            self._first_frame = frame.image.copy()  # the annotator draws on frame.image
        result = self.core.step(frame, detections)
        self.outputs.write(result)
        self.intervals.write(result)
        parking = self.core.analytics.parking
        if parking is not None:
            self.outputs.write_parking(parking.pop_intervals())
        self.summary["frames"] += 1
        self.last_frame_index = frame.frame_index
        self._end_s = frame.timestamp_s + 1.0 / float(self.source.fps)
        if time.monotonic() - self._last_refresh > SUMMARY_REFRESH_S:
            self._last_refresh = time.monotonic()
            write_json_atomic(self.out_dir / "summary.json", self._summary("running"))

    def record_source_events(self, records: list[dict[str, Any]], frame_index: int | None = None) -> None:
        """Write the source's connection events (disconnects, reconnects) to events.jsonl, with the
        index of the frame they came before (default: after the last frame processed)."""
        if frame_index is None:
            frame_index = self.last_frame_index + 1
        if records:
            self.summary["reconnects"] += sum(r["event"] == "stream_reconnected" for r in records)
            self.outputs.write_records({**record, "frame_index": frame_index} for record in records)

    def _resolution_changed(self, width: int, height: int) -> None:
        old_width, old_height = self.core.frame_size
        has_geometry = bool(
            self.config.lines or self.config.zones or self.config.parking.slots or self.config.movements.approaches
        )
        if has_geometry and not self.follow_resolution:
            raise SourceError(
                f"{self.source.display_name}: resolution changed from {old_width}x{old_height} to {width}x{height}; "
                "lines and zones are in pixels: give them with 'coordinates: normalized' to follow such changes"
            )
        log.warning("%s: resolution changed to %dx%d; geometry rescaled", self.source.display_name, width, height)
        self.core.resize(width, height)
        self.outputs.write_records([{"event": "resolution_changed", "width": width, "height": height}])

    def _summary(self, status: str, error: str | None = None) -> dict[str, Any]:
        elapsed = time.perf_counter() - self._started
        summary = dict(self.summary)
        summary.update(self.detector.describe())  # what a trial at the start chose
        summary.update(
            duration_s=round(self._end_s, 4),
            processing_fps=round(summary["frames"] / elapsed, 2) if elapsed > 0 else 0.0,
            peak_rss_mb=peak_rss_mb(),
            peak_gpu_mb=peak_gpu_mb(self.detector.device),
            status=status,
            **self.core.analytics.summary(self._end_s),
            intervals=self.intervals.summary(),
            tracks_total=self.core.tracks.total,
        )
        if error:
            summary["error"] = mask_credentials(error)
        return summary

    def finish(self, status: str, error: str | None = None, frames_dropped: int = 0) -> dict[str, Any]:
        """Flush and close every output, write summary.json and the plots; returns the summary.

        Raises:
            PipelineError: An output could not be written (a full disk) while a run without an
                ``error`` was closing; ``summary.json`` says ``failed`` and why, if it fits.
        """
        if self.finished:
            return self.summary
        self.finished = True
        self.summary["frames_dropped"] = frames_dropped
        self.summary["frames_skipped"] = self.source.frames_skipped
        failure: PipelineError | None = None
        try:
            try:
                self.record_source_events(self.source.drain_events())  # the last ones, e.g. during an outage
                parking = self.core.analytics.parking
                if parking is not None:
                    self.outputs.write_parking(parking.finish(self._end_s))
            finally:
                self.intervals.close()
                self.outputs.close()  # the frames in flight are drawn and encoded first
                if self.outputs.publisher is not None:
                    self.outputs.publisher.close()
        except PipelineError as exc:  # the sinks cut their files back to whole records first
            failure, status = exc, "failed"
        self.summary = self._summary(status, error or (str(failure) if failure else None))
        try:
            write_json_atomic(self.out_dir / "summary.json", self.summary)
            if self.config.output.plots and self.summary["frames"]:
                movements = self.core.analytics.movements_view()
                write_plots(self.outputs.counts_path, self.core.heatmap, self._first_frame, self.out_dir, movements)
        except OSError as exc:
            failure = failure or output_error(self.out_dir, exc)
        self.outputs.end(self.summary["status"])
        if failure is not None and error is None:  # with an error, the caller reports that one
            raise failure
        return self.summary


def _metrics_of(viewers: Sequence[FrameViewer]) -> Iterator[RunMetrics]:
    """The Prometheus metrics a live view serves (``--serve``), if any."""
    return (metrics for viewer in viewers if (metrics := getattr(viewer, "metrics", None)) is not None)


def run_sources(
    config: Config, specs: Sequence[str], progress: bool = True, viewers: Sequence[FrameViewer] = ()
) -> list[dict[str, Any]]:
    """Process several sources with one model: frames are batched across sources for inference.

    With one source its outputs go to ``output.dir`` (default ``runs/<source name>``); with several,
    to ``<output.dir or runs/streams>/<source name>/``, and ``summary.json`` there lists every
    source's status. Sources are opened side by side (see :class:`SourceOpener`): one that cannot
    connect retries, or gives up, on its own while the others run.

    Returns:
        One summary per source that ran, as written to their ``summary.json``.

    Raises:
        PipelineError: Invalid input (before anything is written: every source failed to open, a
            config or model error).
        SourcesFailed: A source failed to open or failed mid-run while others ran (after every
            output is finalized; the other sources run to their end).
    """
    if not specs:
        raise config.error("source.path", "no source given (pass SOURCE on the command line)")
    normalized = config.coordinates == "normalized"  # geometry that can follow a change of resolution
    detector: Detector | None = None

    def start_run(source: FrameSource, source_config: Config, out_dir: Path) -> SourceRun:
        assert detector is not None
        return SourceRun(source_config, source, detector, out_dir, viewers, follow_resolution=normalized)

    fleet = Fleet(config, specs, start_run)
    Publisher.check(config)
    with ExitStack() as stack:
        opener = stack.enter_context(SourceOpener(specs, lambda spec, stop: open_spec(config, spec, stop)))
        opened: list[tuple[int, FrameSource, PrefetchIterator[Frame] | None]] = []
        stack.callback(lambda: [release(s, r) for _, s, r in opened[len(fleet.runs) :]])  # an error before runs
        for index, outcome in opener.wait_for_start(grace_s=config.source.stall_timeout_s):
            if isinstance(outcome, PipelineError):
                fleet.failures[index] = str(outcome)
            else:  # timed as read: read now, not once the model has loaded
                opened.append((index, outcome, fleet.read(outcome) if outcome.read_clock else None))
        if not opened:
            raise SourceError("; ".join(fleet.failures[index] for index in sorted(fleet.failures)))
        source_configs = fleet.prepare([source for _, source, _ in opened])
        out_dirs = [fleet.place(source) for _, source, _ in opened]  # checked before the model loads
        largest = max((source for _, source, _ in opened), key=lambda s: s.width * s.height)
        frame_size = (largest.width, largest.height)
        model = model_for_parking(config.model, config.parking, frame_size)
        origin = config.flags.get("model.classes", config.origin)
        detector = Detector(model, frame_size=frame_size, origin=origin, pipelined=True)
        set_torch_threads(detector.backend)
        for (index, source, reader), source_config, out_dir in zip(opened, source_configs, out_dirs, strict=True):
            fleet.add(index, reader or fleet.read(source), source, source_config, out_dir)
        stack.callback(fleet.finish, "failed")  # an unexpected error: outputs still finalized

        sources = [run.source for run in fleet.runs]
        known = not opener.pending and all(s.frame_count for s in sources)
        total = sum(s.frame_count or 0 for s in sources) if known else None
        bar = stack.enter_context(tqdm(total=total, unit="frame", disable=not progress, dynamic_ncols=True))
        try:
            _loop(fleet, opener, detector, bar)
        except KeyboardInterrupt:
            fleet.finish("interrupted")
        else:
            fleet.finish("completed")
        fleet.write_overview(opener.pending)
        summaries = [run.summary for run in fleet.runs]
        failures = [fleet.failures[index] for index in sorted(fleet.failures)]
        failures += [f"{mask_credentials(specs[index])}: never connected" for index in sorted(opener.pending)]
    if failures:
        raise SourcesFailed(failures, [s for s in summaries if s["status"] != "failed"])
    return summaries


def _loop(fleet: Fleet, opener: SourceOpener, detector: Detector, bar: tqdm) -> None:
    """Until every source ends: detection batches come from their own thread; track, count, write."""
    stage = DetectionStage(fleet.readers, fleet.runs, detector, expected=len(opener.pending))
    batches = PrefetchIterator(stage, maxsize=2)
    max_frames = fleet.config.source.max_frames
    try:
        for batch in batches:
            fleet.admit(opener.take(), stage)
            for index, frame, result in batch:
                run = fleet.runs[index]
                if run.finished:
                    continue
                try:
                    if isinstance(result, PipelineError):
                        raise result
                    if frame is None:  # the source ended: its outputs are complete now, whatever the others do
                        fleet.end(index)
                        continue
                    run.record_source_events(run.source.drain_events(), frame.frame_index)
                    run.process(frame, result)
                except PipelineError as exc:
                    fleet.failures[fleet.spec_of(index)] = str(exc)
                    run.source.stop()
                    fleet.end(index, "failed", str(exc))
                    stage.stop_source(index)
                    continue
                if max_frames is not None and run.summary["frames"] >= max_frames:  # frames processed
                    run.source.stop()
                    fleet.end(index)
                    stage.stop_source(index)
            for run in fleet.runs:  # connection events are written as they happen, frames or not
                if not run.finished:
                    run.record_source_events(run.source.drain_events())
            bar.update(sum(frame is not None for _, frame, _ in batch))
    finally:
        stage.close()
        batches.close()


def run(config: Config, progress: bool = True, viewers: Sequence[FrameViewer] = ()) -> dict[str, Any]:
    """Process ``config.source.path`` end to end and write the outputs.

    Args:
        config: A validated run config; ``source.path`` must be set.
        progress: Show a progress bar (frames, FPS, ETA) on stderr.
        viewers: Live views (``--serve``, ``--show``) to publish annotated frames to.

    Returns:
        The run summary, as written to ``summary.json``. ``status`` is ``completed`` or
        ``interrupted`` (Ctrl-C / SIGTERM; outputs are valid up to the last frame).

    Raises:
        PipelineError: Invalid input, found before any output is written, or a source that fails
            mid-run (outputs are finalized first).
    """
    if not config.source.path:
        raise config.error("source.path", "no source given (pass SOURCE on the command line)")
    return run_sources(config, [config.source.path], progress=progress, viewers=viewers)[0]
