"""Wires the stages together and runs them over one or several sources.

``source -> Detector -> ByteTrackTracker -> Analytics -> FrameAnnotator -> sinks``

Each source is read on its own thread into a small bounded queue (keeping only the newest frames
for live feeds); a detection thread batches the frames of all sources into one inference call,
while the main thread has each source's :class:`SourceRun` track, count and write its own
CSV/JSONL for the previous batch; drawing and H.264 encoding run on one more thread per source,
with a frozen snapshot of that frame's counts. A slow or dead camera does not stall the others.

Everything that can fail on bad input (config, source, model, geometry) is checked before the
output folders are touched; once running, every sink flushes per frame and is closed on any exit,
Ctrl-C included, and ``summary.json`` is always written with the run's status.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import supervision as sv
from tqdm import tqdm

from pipeline.analytics import Analytics, AnalyticsView
from pipeline.analytics.heatmap import Heatmap
from pipeline.annotators.frame import FrameAnnotator
from pipeline.concurrency import BackgroundWorker, PrefetchIterator
from pipeline.config import Config, parse_rotation
from pipeline.errors import PipelineError, SourceError
from pipeline.io.plots import write_counts_plot, write_heatmap
from pipeline.io.sinks import CountsCsvSink, H264VideoSink, JsonlSink, write_json_atomic
from pipeline.io.sources import Frame, FrameSource, is_live_spec, open_source
from pipeline.io.urls import mask_credentials
from pipeline.memory import peak_rss_mb
from pipeline.models import Detector, PendingDetections
from pipeline.opening import Outcome, SourceOpener
from pipeline.tracking import ByteTrackTracker

log = logging.getLogger(__name__)

SUMMARY_REFRESH_S = 30.0
"""How often (wall clock) a long run rewrites summary.json, so it is current while running."""


class FrameViewer(Protocol):
    """Something that shows annotated frames live (``--serve``, ``--show``)."""

    def publish(
        self, source: str, image_bgr: np.ndarray, frame_index: int, timestamp_s: float, counts: dict[str, Any]
    ) -> None: ...

    def end(self, source: str, status: str) -> None: ...


def output_dir_for(config: Config, source: FrameSource) -> Path:
    """``output.dir`` if set, else ``runs/<source name>``."""
    return Path(config.output.dir) if config.output.dir else Path("runs") / source.name


def segment_path(path: Path, index: int) -> Path:
    """``counts.csv`` for the first segment of a rotated output, then ``counts.0001.csv``, ..."""
    return path if index == 0 else path.with_name(f"{path.stem}.{index:04d}{path.suffix}")


def _counts_of(view: AnalyticsView) -> dict[str, Any]:
    """The counts a live view shows for one frame (like a counts.csv row)."""
    counts: dict[str, Any] = {}
    for line in view.lines:
        counts[f"{line.name}_in"], counts[f"{line.name}_out"] = line.in_total, line.out_total
    counts.update({f"{zone.name}_count": zone.count for zone in view.zones})
    if view.parking is not None:
        counts["slots_free"] = view.parking.free_count
    return counts


class _TrackCount:
    """Counts distinct track IDs in O(1) memory: ByteTrack issues IDs in increasing order."""

    def __init__(self) -> None:
        self.total = 0
        self._highest = 0

    def update(self, track_ids: np.ndarray | None) -> None:
        if track_ids is not None and len(track_ids):
            self.total += int((track_ids > self._highest).sum())
            self._highest = max(self._highest, int(track_ids.max()))


class SourceRun:
    """Everything one source needs after the model: tracking, analytics, drawing and its outputs.

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
        self.viewers = list(viewers)
        self.detect_every = config.model.detect_every
        self.size = (source.width, source.height)
        self.video_size = self.size
        """The annotated video keeps the first resolution, whatever the source does later."""
        self._new_tracker = lambda: ByteTrackTracker(
            config.tracker, fps=float(source.fps), class_names=detector.names, detect_every=self.detect_every
        )
        self.tracker = self._new_tracker()
        self.analytics = Analytics.for_run(config)
        self.annotator = FrameAnnotator(config.draw, show_masks=detector.task == "segment")
        self.heatmap = Heatmap(source.width, source.height)
        self.tracks = _TrackCount()
        self.rotation = parse_rotation(config.output.rotate) if config.output.rotate else None
        self._segment = 0
        self._segment_started_s = 0.0
        self._stack = ExitStack()
        out_dir.mkdir(parents=True, exist_ok=True)
        self._open_outputs()
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
            "detect_every": self.detect_every,
            "output_dir": str(out_dir),
            "status": "running",
            "frames_dropped": 0,
            "frames_skipped": 0,
            "reconnects": 0,
        }

    # --- outputs ---------------------------------------------------------------------------------

    def _open_outputs(self) -> None:
        """Open this segment's files (all of them, so a rotation never splits a frame's records)."""
        stack = self._stack = ExitStack()
        index = self._segment
        self.video: H264VideoSink | None = None
        self.drawing: BackgroundWorker[tuple[Frame, sv.Detections, AnalyticsView]] | None = None
        if self.config.output.video:
            self.video = stack.enter_context(
                H264VideoSink.for_output(
                    segment_path(self.out_dir / "annotated.mp4", index),
                    *self.video_size,
                    self.source.fps,
                    self.config.output,
                )
            )
        if self.video is not None or self.viewers:
            # Entered after the video sink, so it is drained (all frames encoded) before the sink closes.
            self.drawing = stack.enter_context(BackgroundWorker(self._draw, maxsize=4))
        columns = ["frame_index", "timestamp_s", "tracks_active", *self.analytics.columns]
        self.counts = stack.enter_context(CountsCsvSink(segment_path(self.out_dir / "counts.csv", index), columns))
        self.events = stack.enter_context(JsonlSink(segment_path(self.out_dir / "events.jsonl", index)))
        self.parking_log = None
        if self.analytics.parking is not None:
            self.parking_log = stack.enter_context(JsonlSink(segment_path(self.out_dir / "parking.jsonl", index)))

    def _rotate_if_due(self, timestamp_s: float) -> None:
        if self.rotation is None:
            return
        kind, limit = self.rotation
        if kind == "time":
            due = timestamp_s - self._segment_started_s >= limit
        else:
            due = any(p.exists() and p.stat().st_size >= limit for p in self._segment_files())
        if due:
            self._stack.close()
            self._segment += 1
            self._segment_started_s = timestamp_s
            self._open_outputs()

    def _segment_files(self) -> list[Path]:
        names = ["annotated.mp4", "counts.csv", "events.jsonl"]
        return [segment_path(self.out_dir / name, self._segment) for name in names]

    def _draw(self, item: tuple[Frame, sv.Detections, AnalyticsView]) -> None:
        frame, tracked, view = item
        image = self.annotator.annotate(frame.image, tracked, frame.timestamp_s, view)
        if self.video is not None:
            video_size = (self.video.width, self.video.height)
            if image.shape[1::-1] != video_size:  # the source changed resolution: the video keeps its size
                image = cv2.resize(image, video_size, interpolation=cv2.INTER_AREA)
            self.video.write(image, frame.timestamp_s)
        counts = _counts_of(view)
        for viewer in self.viewers:
            viewer.publish(self.name, image, frame.frame_index, frame.timestamp_s, counts)

    # --- per frame ---------------------------------------------------------------------------------

    def needs_detection(self, frame: Frame) -> bool:
        return frame.frame_index % self.detect_every == 0

    def process(self, frame: Frame, detections: sv.Detections | None) -> None:
        """Track, count, write and queue for drawing one frame (``detections`` None: a skipped frame)."""
        if frame.image.shape[1::-1] != self.size and self._first_frame is not None:
            self._resolution_changed(frame.image.shape[1], frame.image.shape[0])
        if self._first_frame is None:
            self._first_frame = frame.image.copy()  # the annotator draws on frame.image
        self._rotate_if_due(frame.timestamp_s)
        tracked = self.tracker.update(detections) if detections is not None else self.tracker.predict()
        frame_events = self.analytics.update(tracked, frame.frame_index, frame.timestamp_s)
        self.heatmap.update(tracked)
        self.tracks.update(tracked.tracker_id)
        self.counts.write(
            {
                "frame_index": frame.frame_index,
                "timestamp_s": frame.timestamp_s,
                "tracks_active": len(tracked),
                **self.analytics.row(),
            }
        )
        self.events.write(event.to_record() for event in frame_events)
        if self.parking_log is not None and self.analytics.parking is not None:
            self.parking_log.write(self.analytics.parking.pop_intervals())
        if self.drawing is not None:
            self.drawing.submit((frame, tracked, self.analytics.view()))
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
            self.events.write({**record, "frame_index": frame_index} for record in records)

    def _resolution_changed(self, width: int, height: int) -> None:
        old_width, old_height = self.size
        has_geometry = bool(self.config.lines or self.config.zones or self.config.parking.slots)
        if has_geometry and not self.follow_resolution:
            raise SourceError(
                f"{self.source.display_name}: resolution changed from {old_width}x{old_height} to {width}x{height}; "
                "lines and zones are in pixels: give them with 'coordinates: normalized' to follow such changes"
            )
        log.warning("%s: resolution changed to %dx%d; geometry rescaled", self.source.display_name, width, height)
        self.analytics.rescale(width / old_width, height / old_height)
        self.tracker = self._new_tracker()  # boxes at another scale cannot match the old tracks
        self.size = (width, height)
        self.events.write([{"event": "resolution_changed", "width": width, "height": height}])

    # --- end -----------------------------------------------------------------------------------------

    def _summary(self, status: str, error: str | None = None) -> dict[str, Any]:
        elapsed = time.perf_counter() - self._started
        summary = dict(self.summary)
        summary.update(self.detector.describe())  # what a trial at the start chose
        summary.update(
            duration_s=round(self._end_s, 4),
            processing_fps=round(summary["frames"] / elapsed, 2) if elapsed > 0 else 0.0,
            peak_rss_mb=peak_rss_mb(),
            status=status,
            **self.analytics.summary(self._end_s),
            tracks_total=self.tracks.total,
        )
        if error:
            summary["error"] = mask_credentials(error)
        return summary

    def finish(self, status: str, error: str | None = None, frames_dropped: int = 0) -> dict[str, Any]:
        """Flush and close every output, write summary.json and the plots; returns the summary."""
        if self.finished:
            return self.summary
        self.finished = True
        self.summary["frames_dropped"] = frames_dropped
        self.summary["frames_skipped"] = self.source.frames_skipped
        try:
            self.record_source_events(self.source.drain_events())  # the last ones, e.g. during an outage
            if self.parking_log is not None and self.analytics.parking is not None:
                self.parking_log.write(self.analytics.parking.finish(self._end_s))
        finally:
            self._stack.close()  # the frames in flight are drawn and encoded first
        self.summary = self._summary(status, error)
        write_json_atomic(self.out_dir / "summary.json", self.summary)
        for viewer in self.viewers:
            viewer.end(self.name, status)
        if self.config.output.plots and self.summary["frames"]:
            write_counts_plot(self.counts.path, self.out_dir / "counts.png")
            if self._first_frame is not None:
                write_heatmap(self.heatmap, self._first_frame, self.out_dir / "heatmap.png")
        return self.summary


STOP_WAIT_S = 1.0
"""How long shutting down waits for a source's reading thread (one blocked in a network read is left
to end with the process)."""


class SourcesFailed(SourceError):
    """Some sources failed (the others ran to their end): exit code 3, or 2 if none ran at all."""

    def __init__(self, failures: Sequence[str], summaries: Sequence[dict[str, Any]]) -> None:
        super().__init__("; ".join(failures))
        self.summaries = list(summaries)
        self.exit_code = 3 if summaries else 2


def _unique_name(name: str, taken: list[str]) -> str:
    unique, suffix = name, 2
    while unique in taken:
        unique, suffix = f"{name}_{suffix}", suffix + 1
    taken.append(unique)
    return unique


def _open(config: Config, spec: str, stop: threading.Event) -> FrameSource:
    # --max-frames counts processed frames: a live source must not count the ones dropped unread.
    max_frames = None if is_live_spec(spec) else config.source.max_frames
    return open_source(
        spec,
        fps=config.source.fps,
        max_frames=max_frames,
        stall_timeout_s=config.source.stall_timeout_s,
        max_reconnects=config.source.max_reconnects,
        stop_event=stop,
    )


def _release(source: FrameSource, reader: PrefetchIterator[Frame]) -> None:
    """Stop reading ``source`` and close it, unless a read blocked in FFmpeg still uses it."""
    source.stop()
    if reader.close(timeout_s=STOP_WAIT_S):
        source.close()


class _Fleet:
    """The sources of a run and their :class:`SourceRun` and reader, added as each one opens."""

    def __init__(self, config: Config, specs: Sequence[str], viewers: Sequence[FrameViewer]) -> None:
        self.config, self.specs, self.viewers = config, specs, viewers
        self.base = Path(config.output.dir) if config.output.dir else Path("runs") / "streams"
        self.runs: list[SourceRun] = []
        self.readers: list[PrefetchIterator[Frame]] = []
        self.failures: dict[int, str] = {}  # by spec index
        self._spec_of_run: list[int] = []
        self._names: list[str] = []
        self._finished = False
        self.detector: Detector | None = None

    def prepare(self, sources: Sequence[FrameSource]) -> list[Config]:
        """Geometry in each source's pixels, checked; the first sources also size the model input."""
        configs = [self.config.in_pixels(s.width, s.height) for s in sources]
        for source_config, source in zip(configs, sources, strict=True):
            source_config.validate_geometry(source.width, source.height)
        return configs

    def read(self, source: FrameSource) -> PrefetchIterator[Frame]:
        """Start reading ``source`` on its own thread (at once: a live feed must not back up meanwhile)."""
        policy = self.config.source.read_policy
        latest = policy == "latest" or (policy == "auto" and source.live)
        return PrefetchIterator(source, maxsize=2 if latest else 4, drop_oldest=latest)

    def add(self, spec_index: int, reader: PrefetchIterator[Frame], source: FrameSource, source_config: Config) -> int:
        """Process ``source``, read by ``reader``; returns its run index."""
        assert self.detector is not None
        source.name = _unique_name(source.name, self._names)
        single = len(self.specs) == 1
        out_dir = output_dir_for(self.config, source) if single else self.base / source.name
        normalized = self.config.coordinates == "normalized"
        self.runs.append(SourceRun(source_config, source, self.detector, out_dir, self.viewers, normalized))
        self.readers.append(reader)
        self._spec_of_run.append(spec_index)
        return len(self.runs) - 1

    def spec_of(self, run_index: int) -> int:
        """The position in the run's source list of run ``run_index``."""
        return self._spec_of_run[run_index]

    def admit(self, outcomes: Sequence[Outcome], stage: _DetectionStage) -> None:
        """Sources that opened (or failed) mid-run: start them (or record why not)."""
        for spec_index, outcome in outcomes:
            try:
                if isinstance(outcome, PipelineError):
                    raise outcome
                source_config = self.prepare([outcome])[0]
                stage.add_source(self.add(spec_index, self.read(outcome), outcome, source_config))
            except PipelineError as exc:
                self.failures[spec_index] = str(exc)
                stage.add_source(None)
                if not isinstance(outcome, PipelineError):
                    outcome.close()

    def stop(self) -> list[bool]:
        """Stop every source and its reader at once, waiting ``STOP_WAIT_S`` for them all; whether
        each reader has ended."""
        for run, reader in zip(self.runs, self.readers, strict=True):
            run.source.stop()
            reader.stop()
        deadline = time.monotonic() + STOP_WAIT_S
        return [reader.close(timeout_s=max(0.0, deadline - time.monotonic())) for reader in self.readers]

    def end(self, run_index: int, status: str = "completed", error: str | None = None) -> None:
        """Finish one run (``completed`` becomes ``truncated`` for a source that ended before its announced end)."""
        run, reader = self.runs[run_index], self.readers[run_index]
        status = "truncated" if status == "completed" and run.source.truncated else status
        run.finish(status, error, frames_dropped=reader.dropped)

    def finish(self, status: str) -> None:
        """Finish every run (those already finished keep their status) and release the sources; once."""
        if self._finished:
            return
        self._finished = True
        ended = self.stop()
        for index in range(len(self.runs)):
            self.end(index, status, "stopped by an error" if status == "failed" else None)
        for run, reader_ended in zip(self.runs, ended, strict=True):
            if reader_ended:  # else a read blocked in FFmpeg still uses it; it ends with the process
                run.source.close()

    def write_overview(self, pending: set[int]) -> None:
        """With several sources, ``summary.json`` in the base folder: each source's status and folder."""
        if len(self.specs) == 1:
            return
        entries: dict[int, dict[str, Any]] = {}
        for run, spec_index in zip(self.runs, self._spec_of_run, strict=True):
            entry = {"source": run.source.display_name, "status": run.summary["status"], "output_dir": str(run.out_dir)}
            entries[spec_index] = {**entry, **({"error": run.summary["error"]} if "error" in run.summary else {})}
        for spec_index, error in self.failures.items():
            if spec_index in entries:  # failed mid-run: its summary says why
                continue
            entries[spec_index] = {"source": mask_credentials(self.specs[spec_index]), "status": "failed"}
            entries[spec_index]["error"] = mask_credentials(error)
        for spec_index in pending:
            entries[spec_index] = {"source": mask_credentials(self.specs[spec_index]), "status": "never_connected"}
        sources = [entries[index] for index in sorted(entries)]
        failed = sum(entry["status"] in ("failed", "never_connected") for entry in sources)
        self.base.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.base / "summary.json", {"sources": sources, "sources_failed": failed})


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
    fleet = _Fleet(config, specs, viewers)
    with ExitStack() as stack:
        opener = stack.enter_context(SourceOpener(specs, lambda spec, stop: _open(config, spec, stop)))
        opened: list[tuple[int, FrameSource, PrefetchIterator[Frame]]] = []
        stack.callback(lambda: [_release(s, r) for _, s, r in opened[len(fleet.runs) :]])  # an error before runs
        for index, outcome in opener.wait_for_start(grace_s=config.source.stall_timeout_s):
            if isinstance(outcome, PipelineError):
                fleet.failures[index] = str(outcome)
            else:
                opened.append((index, outcome, fleet.read(outcome)))
        if not opened:
            raise SourceError("; ".join(fleet.failures[index] for index in sorted(fleet.failures)))
        source_configs = fleet.prepare([source for _, source, _ in opened])
        largest = max((source for _, source, _ in opened), key=lambda s: s.width * s.height)
        fleet.detector = Detector(
            config.model, frame_size=(largest.width, largest.height), origin=config.origin, pipelined=True
        )
        for (index, source, reader), source_config in zip(opened, source_configs, strict=True):
            fleet.add(index, reader, source, source_config)
        stack.callback(fleet.finish, "failed")  # an unexpected error: outputs still finalized

        sources = [run.source for run in fleet.runs]
        known = not opener.pending and all(s.frame_count for s in sources)
        total = sum(s.frame_count or 0 for s in sources) if known else None
        bar = stack.enter_context(tqdm(total=total, unit="frame", disable=not progress, dynamic_ncols=True))
        try:
            _loop(fleet, opener, bar)
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


_Batch = list[tuple[int, Frame | None, sv.Detections | PipelineError | None]]


class _DetectionStage:
    """Takes the frames that are ready from every source and detects them in one batch, on its own
    thread, so inference overlaps the main thread's tracking, counting and writing.

    Keeps up to ``detector.in_flight`` batches in inference at once (OpenVINO's throughput streams
    on a CPU), handing them on in order; when no new frame is ready, whatever is in flight is
    finished and handed on at once rather than held back.

    Iterating yields one batch per step: ``(source index, frame, detections or None)`` triples,
    ``(source index, None, error)`` for a source that failed, ``(source index, None, None)`` for
    one that ended (after its last frame); an empty batch every ``TICK_S`` while no frame comes,
    so the consumer can tend the sources. :meth:`stop_source` drops a source (the consumer failed
    it), :meth:`add_source` adds one of the ``expected`` sources still connecting (or None: it will
    not come); :meth:`close` ends the iteration.
    """

    TICK_S = 0.25

    def __init__(
        self, readers: list[PrefetchIterator[Frame]], runs: list[SourceRun], detector: Detector, expected: int = 0
    ) -> None:
        self.readers = readers
        self.runs = runs
        self.detector = detector
        self._stopped: set[int] = set()
        self._closed = threading.Event()
        self._added: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._expected = expected

    def stop_source(self, index: int) -> None:
        self._stopped.add(index)

    def add_source(self, index: int | None) -> None:
        """One of the expected sources is ready (its run and reader are in place), or None: will not come."""
        self._added.put(index)

    def _take_added(self, active: list[int]) -> None:
        while not self._added.empty():
            index = self._added.get()
            self._expected -= 1
            if index is not None:
                active.append(index)

    def close(self) -> None:
        self._closed.set()

    def __iter__(self) -> Iterator[_Batch]:
        active = list(range(len(self.readers)))
        in_flight: deque[tuple[_Batch, list[tuple[int, Frame]], list[bool], PendingDetections]] = deque()
        last_yield = time.monotonic()
        try:
            while (active or self._expected > 0) and not self._closed.is_set():
                self._take_added(active)
                active = [index for index in active if index not in self._stopped]
                ended: _Batch = []
                ready: list[tuple[int, Frame]] = []
                for index in list(active):
                    reader = self.readers[index]
                    try:
                        # Inference in flight takes longer than this short wait for the next frame.
                        wait_s = 0 if ready or len(active) > 1 else 0.01 if in_flight else 0.1
                        frame = reader.poll(timeout=wait_s)
                    except PipelineError as exc:
                        ended.append((index, None, exc))
                        active.remove(index)
                        continue
                    if frame is None:
                        if reader.done:
                            active.remove(index)
                            ended.append((index, None, None))
                        continue
                    ready.append((index, frame))
                if not ready:
                    while in_flight:
                        yield self._finish(*in_flight.popleft())
                        last_yield = time.monotonic()
                    if ended or time.monotonic() - last_yield > self.TICK_S:
                        yield ended
                        last_yield = time.monotonic()
                    elif active or self._expected > 0:
                        time.sleep(0.005)
                    continue
                wanted = [self.runs[index].needs_detection(frame) for index, frame in ready]
                images = [frame.image for (_, frame), want in zip(ready, wanted, strict=True) if want]
                in_flight.append((ended, ready, wanted, self.detector.start(images)))
                while len(in_flight) >= self.detector.in_flight:
                    yield self._finish(*in_flight.popleft())
                    last_yield = time.monotonic()
            while in_flight:
                yield self._finish(*in_flight.popleft())
        finally:
            for *_, pending in in_flight:  # stopped early: let the inference in progress end first
                with suppress(Exception):  # its results are not wanted, nor are its errors
                    pending()

    @staticmethod
    def _finish(
        ended: _Batch, ready: list[tuple[int, Frame]], wanted: list[bool], pending: PendingDetections
    ) -> _Batch:
        detected = iter(pending())
        return ended + [
            (index, frame, next(detected) if want else None) for (index, frame), want in zip(ready, wanted, strict=True)
        ]


def _loop(fleet: _Fleet, opener: SourceOpener, bar: tqdm) -> None:
    """Until every source ends: detection batches come from their own thread; track, count, write."""
    stage = _DetectionStage(fleet.readers, fleet.runs, fleet.detector, expected=len(opener.pending))
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
