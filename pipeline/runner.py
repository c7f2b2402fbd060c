"""Wires the stages together and runs them over one or several sources.

``source -> Detector -> FramePipeline (ByteTrack, analytics) -> RunOutputs (drawing, sinks)``

Each source is read on its own thread into a small bounded queue (keeping only the newest frames
for live feeds); a detection thread batches the frames of all sources into one inference call,
while the main thread has each source's :class:`SourceRun` step its
:class:`~pipeline.frame_pipeline.FramePipeline` and write its :class:`~pipeline.io.outputs.RunOutputs`
for the previous batch; drawing and H.264 encoding run on one more thread per source, with a
frozen snapshot of that frame's counts. A slow or dead camera does not stall the others.

Everything that can fail on bad input (config, source, model, geometry) is checked before the
output folders are touched; once running, every sink flushes per frame and is closed on any exit,
Ctrl-C included, and ``summary.json`` is always written with the run's status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv
from tqdm import tqdm

from pipeline.analytics.parking import model_for_parking
from pipeline.annotators.frame import FrameAnnotator
from pipeline.concurrency import PrefetchIterator
from pipeline.config import Config
from pipeline.errors import PipelineError, SourceError
from pipeline.frame_pipeline import FramePipeline
from pipeline.io.intervals_file import IntervalsFile
from pipeline.io.metrics import RunMetrics
from pipeline.io.output_dirs import check_output_dir, output_error, prepare_output_dir
from pipeline.io.outputs import FrameViewer, RunOutputs
from pipeline.io.plots import write_plots
from pipeline.io.publish import Publisher
from pipeline.io.sinks import write_json_atomic
from pipeline.io.sources import Frame, FrameSource, open_source
from pipeline.io.urls import mask_credentials
from pipeline.memory import peak_gpu_mb, peak_rss_mb
from pipeline.models import Detector, PendingDetections
from pipeline.runtime import set_torch_threads

log = logging.getLogger(__name__)

SUMMARY_REFRESH_S = 30.0
"""How often (wall clock) a long run rewrites summary.json, so it is current while running."""


def output_dir_for(config: Config, source: FrameSource) -> Path:
    """``output.dir`` if set, else ``runs/<source name>``."""
    return Path(config.output.dir) if config.output.dir else Path("runs") / source.name


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
        self._end_s = 0.0
        self._next_frame_index = 0
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
        self._end_s = frame.timestamp_s + 1.0 / float(self.source.fps)
        self._next_frame_index = frame.frame_index + 1
        if time.monotonic() - self._last_refresh > SUMMARY_REFRESH_S:
            self._last_refresh = time.monotonic()
            write_json_atomic(self.out_dir / "summary.json", self._summary("running"))

    def record_source_events(self, records: list[dict[str, Any]], frame_index: int | None = None) -> None:
        """Write the source's connection events (disconnects, reconnects) to events.jsonl (and the
        event streams), with ``frame_index``, or when None (no frame is coming: an outage) the
        source's own or the next frame's."""
        if records:
            self.summary["reconnects"] += sum(r["event"] == "stream_reconnected" for r in records)
            self.outputs.write_records(
                {**record, "frame_index": record.get("frame_index", self._next_frame_index)}
                if frame_index is None
                else {**record, "frame_index": frame_index}
                for record in records
            )

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
        failure: PipelineError | None = None
        try:
            try:
                self.record_source_events(self.source.drain_events())  # a run ended during an outage
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
        if failure is not None and error is None:  # with an error, the caller reports that one
            raise failure
        return self.summary


def _metrics_of(viewers: Sequence[FrameViewer]) -> Iterator[RunMetrics]:
    """The Prometheus metrics a live view serves (``--serve``), if any."""
    return (metrics for viewer in viewers if (metrics := getattr(viewer, "metrics", None)) is not None)


def _unique_names(sources: Sequence[FrameSource]) -> list[str]:
    names: list[str] = []
    for source in sources:
        name, suffix = source.name, 2
        while name in names:
            name, suffix = f"{source.name}_{suffix}", suffix + 1
        names.append(name)
    return names


def run_sources(
    config: Config, specs: Sequence[str], progress: bool = True, viewers: Sequence[FrameViewer] = ()
) -> list[dict[str, Any]]:
    """Process several sources with one model: frames are batched across sources for inference.

    With one source its outputs go to ``output.dir`` (default ``runs/<source name>``); with several,
    to ``<output.dir or runs/streams>/<source name>/``.

    Returns:
        One summary per source, as written to their ``summary.json``.

    Raises:
        PipelineError: Invalid input (before anything is written), or a source that failed for
            good mid-run (after every output is finalized; the other sources run to their end).
    """
    if not specs:
        raise config.error("source.path", "no source given (pass SOURCE on the command line)")
    Publisher.check(config)
    with ExitStack() as stack:
        sources: list[FrameSource] = []
        for spec in specs:
            source = open_source(
                spec,
                fps=config.source.fps,
                max_frames=config.source.max_frames,
                stall_timeout_s=config.source.stall_timeout_s,
                max_reconnects=config.source.max_reconnects,
            )
            stack.callback(source.close)
            sources.append(source)
        source_configs = [config.in_pixels(s.width, s.height) for s in sources]
        for source_config, source in zip(source_configs, sources, strict=True):
            source_config.validate_geometry(source.width, source.height)
        base = Path(config.output.dir) if config.output.dir else Path("runs") / ("streams" if len(specs) > 1 else "")
        out_dirs = []
        for name, source in zip(_unique_names(sources), sources, strict=True):
            source.name = name
            out_dirs.append(output_dir_for(config, source) if len(sources) == 1 else base / name)
            check_output_dir(out_dirs[-1], overwrite=config.output.overwrite)
        largest = max(sources, key=lambda s: s.width * s.height)
        frame_size = (largest.width, largest.height)
        model = model_for_parking(config.model, config.parking, frame_size)
        origin = config.flags.get("model.classes", config.origin)
        detector = Detector(model, frame_size=frame_size, origin=origin, pipelined=True)
        set_torch_threads(detector.backend)

        runs = []
        for out_dir, source, source_config in zip(out_dirs, sources, source_configs, strict=True):
            normalized = config.coordinates == "normalized"
            runs.append(SourceRun(source_config, source, detector, out_dir, viewers, follow_resolution=normalized))
        for run in runs:
            stack.callback(run.finish, "failed", "stopped by an error")  # no-op after a normal finish

        readers = []
        for source in sources:
            policy = config.source.read_policy
            latest = policy == "latest" or (policy == "auto" and source.live)
            reader = PrefetchIterator(source, maxsize=2 if latest else 4, drop_oldest=latest)
            stack.callback(reader.close)
            readers.append(reader)

        total = sum(s.frame_count or 0 for s in sources) if all(s.frame_count for s in sources) else None
        bar = stack.enter_context(tqdm(total=total, unit="frame", disable=not progress, dynamic_ncols=True))
        failures: list[str] = []
        try:
            _loop(runs, readers, detector, bar, failures)
        except KeyboardInterrupt:
            for run, reader in zip(runs, readers, strict=True):
                run.finish("interrupted", frames_dropped=reader.dropped)
        else:
            for run, reader in zip(runs, readers, strict=True):
                run.finish("completed", frames_dropped=reader.dropped)
        summaries = [run.summary for run in runs]
    if failures:
        raise SourceError("; ".join(failures))
    return summaries


_Batch = list[tuple[int, Frame | None, sv.Detections | PipelineError | None]]


class _DetectionStage:
    """Takes the frames that are ready from every source and detects them in one batch, on its own
    thread, so inference overlaps the main thread's tracking, counting and writing.

    Keeps up to ``detector.in_flight`` batches in inference at once (OpenVINO's throughput streams
    on a CPU), handing them on in order; when no new frame is ready, whatever is in flight is
    finished and handed on at once rather than held back.

    Iterating yields one batch per step: ``(source index, frame, detections or None)`` triples, or
    ``(source index, None, error)`` for a source that failed. :meth:`stop_source` drops a source
    (the consumer failed it); :meth:`close` ends the iteration.
    """

    def __init__(self, readers: list[PrefetchIterator[Frame]], runs: list[SourceRun], detector: Detector) -> None:
        self.readers = readers
        self.runs = runs
        self.detector = detector
        self._stopped: set[int] = set()
        self._closed = threading.Event()

    def stop_source(self, index: int) -> None:
        self._stopped.add(index)

    def close(self) -> None:
        self._closed.set()

    def __iter__(self) -> Iterator[_Batch]:
        active = list(range(len(self.readers)))
        in_flight: deque[tuple[_Batch, list[tuple[int, Frame]], list[bool], PendingDetections]] = deque()
        try:
            while active and not self._closed.is_set():
                active = [index for index in active if index not in self._stopped]
                failed: _Batch = []
                ready: list[tuple[int, Frame]] = []
                for index in list(active):
                    reader = self.readers[index]
                    try:
                        # Inference in flight takes longer than this short wait for the next frame.
                        wait_s = 0 if ready or len(active) > 1 else 0.01 if in_flight else 0.1
                        frame = reader.poll(timeout=wait_s)
                    except PipelineError as exc:
                        failed.append((index, None, exc))
                        active.remove(index)
                        continue
                    if frame is None:
                        if reader.done:
                            active.remove(index)
                        continue
                    ready.append((index, frame))
                if not ready:
                    while in_flight:
                        yield self._finish(*in_flight.popleft())
                    if failed:
                        yield failed
                    elif active:
                        time.sleep(0.005)
                        yield []  # no frame: the consumer still passes on the sources' health events
                    continue
                wanted = [self.runs[index].needs_detection(frame) for index, frame in ready]
                images = [frame.image for (_, frame), want in zip(ready, wanted, strict=True) if want]
                in_flight.append((failed, ready, wanted, self.detector.start(images)))
                while len(in_flight) >= self.detector.in_flight:
                    yield self._finish(*in_flight.popleft())
            while in_flight:
                yield self._finish(*in_flight.popleft())
        finally:
            for *_, pending in in_flight:  # stopped early: let the inference in progress end first
                with suppress(Exception):  # its results are not wanted, nor are its errors
                    pending()

    @staticmethod
    def _finish(
        failed: _Batch, ready: list[tuple[int, Frame]], wanted: list[bool], pending: PendingDetections
    ) -> _Batch:
        detected = iter(pending())
        return failed + [
            (index, frame, next(detected) if want else None) for (index, frame), want in zip(ready, wanted, strict=True)
        ]


def _loop(
    runs: list[SourceRun], readers: list[PrefetchIterator[Frame]], detector: Detector, bar: tqdm, failures: list[str]
) -> None:
    """Until every source ends: detection batches come from their own thread; track, count, write."""
    stage = _DetectionStage(readers, runs, detector)
    batches = PrefetchIterator(stage, maxsize=2)
    try:
        for batch in batches:
            if not batch:  # no frame ready: a source in an outage still reports it now
                for run in runs:
                    if not run.finished:
                        run.record_source_events(run.source.drain_events())
            for index, frame, result in batch:
                run = runs[index]
                if run.finished:
                    continue
                try:
                    if isinstance(result, PipelineError):
                        raise result
                    assert frame is not None
                    run.record_source_events(run.source.drain_events(), frame.frame_index)
                    run.process(frame, result)
                except PipelineError as exc:
                    failures.append(str(exc))
                    run.finish("failed", str(exc), frames_dropped=readers[index].dropped)
                    stage.stop_source(index)
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
