"""One source's run after the model: its :class:`~pipeline.run.frame_pipeline.FramePipeline`, its
:class:`~pipeline.io.outputs.run_outputs.RunOutputs`, its intervals and its ``summary.json``: the set-up, the
per-frame step and the finish of every way of running (``vpipe run``, live feeds, batch slices).

A run into a folder that holds an earlier run of the same source and config continues it (see
:mod:`pipeline.io.outputs.run_folder`): the counters start from the earlier events, the bins a killed
run left open are written, and the run's time and frame numbers go on: a file from the frame after
the last one written, a live feed by the wall clock since the run's first frame.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from pipeline.analytics.events import events_of
from pipeline.config import Config, parse_time
from pipeline.errors import PipelineError, SourceError
from pipeline.io.outputs.intervals_file import IntervalsFile
from pipeline.io.outputs.records import RecordStamp, new_run_id, utc_text
from pipeline.io.outputs.run_folder import Earlier, RunFolder, run_identity
from pipeline.io.outputs.run_outputs import FrameViewer, SummaryFile
from pipeline.io.sources.files import Frame, FrameSource
from pipeline.io.urls import mask_credentials
from pipeline.models import Detector
from pipeline.run.detect_interval import IntervalChooser, RateWindow
from pipeline.run.frame_pipeline import FramePipeline, Need
from pipeline.run.run_writers import metrics_of, outputs_for, store_for, write_plots_of
from pipeline.run.source_summary import closing_summary, summary_header
from pipeline.run.summary import RunSummary, SlicePart

log = logging.getLogger(__name__)

RATE_WINDOW_S = 2.0
"""Seconds of wall clock over which ``--detect-every auto`` measures a camera's processing rate."""
SUMMARY_REFRESH_S = 10.0
"""How often (wall clock) a long run rewrites summary.json, so it is current while running (it is
also rewritten at the first frame and whenever an interval bin closes)."""


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
        part: A batch slice of a video file: the frames before ``part.start_frame`` are its warm-up
            (tracked, not counted or written); times stay the video's; no event streams.
        store: The store to write the run to too (see :func:`pipeline.store.store_target`); None: none.
        run_id: This process's run id (default: a new one).
    """

    def __init__(
        self,
        config: Config,
        source: FrameSource,
        detector: Detector,
        out_dir: Path,
        viewers: Sequence[FrameViewer] = (),
        follow_resolution: bool = False,
        part: SlicePart | None = None,
        store: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.config = config
        self.follow_resolution = follow_resolution
        self.source = source
        self.detector = detector
        self.name = source.name
        self.out_dir = out_dir
        size = (source.width, source.height)
        self.core = FramePipeline(config, processed_fps(source, config), detector.names, size, warmup=part is not None)
        self.run_id = run_id or new_run_id()
        self.folder = RunFolder(out_dir, run_identity(config, source), config.output.overwrite)
        earlier = self.folder.earlier
        self.summary = summary_header(source, detector, self.core, out_dir, part, self.run_id)
        self._rebuilt_bins: list[dict[str, Any]] = []  # the bins killed processes left open (see _intervals)
        self._open_slots: list[dict[str, Any]] = []  # and their parking intervals
        self._carry_on(earlier)
        with ExitStack() as on_error:
            on_error.callback(self.folder.close)
            self._summary_file = SummaryFile(out_dir / "summary.json", self.summary)  # first: nothing else to close
            try:
                self.intervals = self._intervals(earlier)
                on_error.callback(self.intervals.close)
                stamp = RecordStamp(self.run_id, earlier.last_seq() if earlier else 0)
                first = earlier.next_file if earlier else 0
                store_sink = store_for(store, config, source, self.core, self.summary, self.run_id)
                if store_sink is not None:
                    on_error.callback(store_sink.end, "failed")
                self.outputs = outputs_for(
                    config, source, detector, self.core, out_dir, viewers, part is None, stamp, first, store_sink
                )
                self.outputs.write_intervals(self._rebuilt_bins)  # a killed process's bins: stored too
                self.outputs.write_parking(self._open_slots)  # and its bays still occupied, as its end would
            except PipelineError as exc:  # e.g. the disk filled since it was checked: the run ends before a frame
                failed = dataclasses.replace(self.summary, status="failed", error=mask_credentials(str(exc)))
                self._summary_file.close(failed)
                raise
            on_error.pop_all()
        self._publisher = self.outputs.publisher  # kept for the summary: the outputs let go of it on close
        self._metrics = next(metrics_of(viewers), None)
        for dashboard in (d for viewer in viewers if (d := getattr(viewer, "dashboard", None)) is not None):
            dashboard.add(self.name, config.publish.camera or source.name, store)  # its charts read the store
        self._start_clock(earlier, part)
        self._rate: RateWindow | None = None  # --detect-every auto
        if config.model.detect_every == "auto":
            self._rate = RateWindow(IntervalChooser(processed_fps(source, config)), RATE_WINDOW_S, time.monotonic)
        self._frames_detected = 0
        self._frames_held = 0  # unchanged since the last detected frame (model.motion_gate)
        self.finished = False

    def _start_clock(self, earlier: Earlier | None, part: SlicePart | None) -> None:
        """Where this process's frames and time start: a whole run's time at its first frame; a
        slice's at the video's (its frames' own times), and so a file's that a run continues, after
        the frames the earlier run wrote."""
        self._first_frame: np.ndarray | None = None
        self._last_frame = earlier.last_frame() if earlier else None
        continued_file = self._last_frame is not None and not self.source.live
        self._origin_s: float | None = 0.0 if part is not None or continued_file else None
        if part is not None and self.intervals.start_epoch_s is not None:  # its time 0 is the video's start
            self.summary.start_utc = utc_text(self.intervals.start_epoch_s)
        self._done_up_to = self._last_frame[0] if continued_file and self._last_frame else -1
        self._index_offset = 0
        self.last_frame_index = -1
        self._end_s = 0.0
        self._started = time.perf_counter()
        self._last_refresh = time.monotonic()

    def _carry_on(self, earlier: Earlier | None) -> None:
        """Carry the run on from ``earlier``, before anything is written: its counts (from its events),
        the processes that wrote it and its clock. A process that was killed stays ``running`` in
        ``segments`` until its open bins are written (see :meth:`_intervals`)."""
        segments: list[dict[str, Any]] = []
        if earlier is not None:
            self.core.analytics.resume(events_of(earlier.events()))
            segments = [dict(segment) for segment in earlier.summary.get("segments", [])]
            if segments and not earlier.killed:
                segments[-1]["status"] = earlier.summary["status"]
            self.summary.start_utc = earlier.summary.get("start_utc")
        first_file = earlier.next_file if earlier else 0
        started = {"run_id": self.run_id, "started_utc": utc_text(time.time()), "first_file": first_file}
        self.summary.segments = [*segments, {**started, "status": "running"}]

    def _intervals(self, earlier: Earlier | None) -> IntervalsFile:
        """The run's ``intervals.csv``, carried on from ``earlier``'s: the bins of every process that was
        killed (still ``running`` in ``segments``) are written from its frames, and so are (later, to
        ``parking.jsonl``) the occupancy intervals it left open; then it is ``killed``."""
        start_epoch_s = parse_time(self.summary.start_utc) if self.summary.start_utc else None
        analytics = self.core.analytics
        intervals = IntervalsFile.for_run(self.out_dir, self.config, self.source, analytics, self.run_id, start_epoch_s)
        if earlier is None:
            return intervals
        ended = self.summary.segments[:-1]
        ends = [segment["first_file"] for segment in ended[1:]] + [earlier.next_file]
        killed = [(segment, end) for segment, end in zip(ended, ends, strict=True) if segment["status"] == "running"]
        frames = [(segment["run_id"], partial(earlier.frames, segment["first_file"], end)) for segment, end in killed]
        self._rebuilt_bins = intervals.continue_from(earlier.interval_rows(), frames)
        frame_s = 1.0 / float(self.source.fps)  # a run's end closes its intervals at its last frame's end
        self._open_slots = [i for seg, end in killed for i in earlier.slots_left_open(seg["first_file"], end, frame_s)]
        for segment, _ in killed:
            segment["status"] = "killed"
        if killed:
            self._summary_file.update(self.summary)
        return intervals

    def detection_need(self, frame: Frame) -> Need:
        """What ``frame`` needs before :meth:`process` (a frame an earlier run wrote needs nothing)."""
        return self.core.detection_need(frame) if frame.frame_index > self._done_up_to else Need.PREDICT

    def _begin(self, frame: Frame) -> None:
        """Start the run's clock at its first frame: a new run's time starts there; a live feed that
        continues a run goes on by the wall clock since that run's first frame, and so do its frame
        numbers after the last one written. ``summary.json`` says when its time 0 was."""
        self._origin_s = frame.timestamp_s
        start_epoch_s, last = self.intervals.start_epoch_s, self._last_frame
        if self.source.live and last is not None and start_epoch_s is not None:
            self._origin_s -= max(time.time() - start_epoch_s, last[1])  # never back in time (a clock set back)
            self._index_offset = last[0] + 1 - frame.frame_index
        start_epoch_s = self.intervals.begin(frame.timestamp_s - self._origin_s)
        self.summary.start_utc = utc_text(start_epoch_s) if start_epoch_s is not None else None
        self._summary_file.update(self._closing("running"))

    def process(
        self, frame: Frame, detections: sv.Detections | None, frames_dropped: int = 0, held: bool = False
    ) -> None:
        """Track, count, write and draw one frame (``detections`` None: skipped by the model; ``held``:
        skipped as unchanged since the last detected frame, see :meth:`FramePipeline.step`).

        The run's time starts at the first frame it processes: ``timestamp_s`` in every output is the
        source's time less that frame's, so it equals the annotated video's presentation time (an
        MP4 starts at 0). A file's first frame is at 0 already; a live feed's clock starts when the
        source was opened, and the frames read while the model loaded were dropped. A run that
        continues another goes on with its time (see :meth:`_begin`).
        """
        if frame.frame_index <= self._done_up_to:  # a continued file: the earlier run wrote this frame
            return
        if self._origin_s is None:
            self._begin(frame)
        assert self._origin_s is not None
        index = frame.frame_index + self._index_offset
        frame = dataclasses.replace(frame, frame_index=index, timestamp_s=frame.timestamp_s - self._origin_s)
        self.summary.frames_dropped = frames_dropped
        if self._metrics is not None:
            self._metrics.dropped(self.name, frames_dropped)
        if frame.image.shape[1::-1] != self.core.frame_size and self._first_frame is not None:
            self._resolution_changed(frame.image.shape[1], frame.image.shape[0])
        part = self.summary.part
        if part is not None and frame.frame_index < part.start_frame:  # warm-up: nothing counted or written
            self.core.step(frame, detections, counted=False, held=held)
            part.warmup_frames += 1
            return
        if self._first_frame is None:
            self._first_frame = frame.image.copy()  # the annotator draws on frame.image
        result = self.core.step(frame, detections, held=held)
        self.outputs.write(result)
        bin_rows = self.intervals.write(result)
        self.outputs.write_intervals(bin_rows)
        parking = self.core.analytics.parking
        if parking is not None:
            self.outputs.write_parking(parking.pop_intervals())
        self.last_frame_index = frame.frame_index
        self._frames_detected += detections is not None
        self._frames_held += held
        if self._rate is not None and (interval := self._rate.frame(frame.frame_index, frames_dropped)) is not None:
            self.core.set_detect_every(interval)
        self._end_s = frame.timestamp_s + 1.0 / float(self.source.fps)
        self.summary.add_frame(frame.frame_index, frame.timestamp_s, self._end_s)
        if bin_rows or time.monotonic() - self._last_refresh > SUMMARY_REFRESH_S:
            self._last_refresh = time.monotonic()
            self._summary_file.update(self._closing("running"))

    def record_source_events(self, records: list[dict[str, Any]], frame_index: int | None = None) -> None:
        """Write the source's connection events (disconnects, reconnects) to events.jsonl, with the
        index of the frame they came before (default: after the last frame processed)."""
        if frame_index is None:
            frame_index = self.last_frame_index + 1
        if records:
            self.summary.reconnects += sum(r["event"] == "stream_reconnected" for r in records)
            self.outputs.write_records({**record, "frame_index": frame_index} for record in records)

    def _resolution_changed(self, width: int, height: int) -> None:
        old_width, old_height = self.core.frame_size
        if self.config.has_geometry and not self.follow_resolution:
            raise SourceError(
                f"{self.source.display_name}: resolution changed from {old_width}x{old_height} to {width}x{height}; "
                "lines and zones are in pixels: give them with 'coordinates: normalized' to follow such changes"
            )
        log.warning("%s: resolution changed to %dx%d; geometry rescaled", self.source.display_name, width, height)
        self.core.resize(width, height)
        self.outputs.write_records([{"event": "resolution_changed", "width": width, "height": height}])

    def _closing(self, status: str, error: str | None = None) -> RunSummary:
        elapsed_s, publisher = time.perf_counter() - self._started, self._publisher
        chosen = self._rate.chooser.report(self._frames_detected) if self._rate is not None else None
        gated = None
        if self.core.gate is not None:
            gated = {"frames_detected": self._frames_detected, "frames_motion_skipped": self._frames_held}
        return closing_summary(
            self.summary,
            self.detector,
            self.core,
            self.intervals,
            publisher,
            elapsed_s,
            self._end_s,
            status,
            error,
            chosen,
            gated,
        )

    def finish(self, status: str, error: str | None = None, frames_dropped: int = 0) -> RunSummary:
        """Flush and close every output, write the plots, then summary.json; returns the summary.

        Raises:
            PipelineError: An output could not be written (a full disk) while a run without an
                ``error`` was closing; ``summary.json`` says ``failed`` and why.
        """
        if self.finished:
            return self.summary
        self.finished = True
        self.summary.frames_dropped = frames_dropped
        self.summary.frames_skipped = self.source.frames_skipped
        failure: PipelineError | None = None
        try:
            try:
                self.record_source_events(self.source.drain_events())  # the last ones, e.g. during an outage
                parking = self.core.analytics.parking
                if parking is not None:
                    self.outputs.write_parking(parking.finish(self._end_s))
            finally:
                try:
                    self.outputs.write_intervals(self.intervals.close())
                finally:
                    self.outputs.close()  # the frames in flight are drawn and encoded first
        except PipelineError as exc:  # the sinks cut their files back to whole records first
            failure, status = exc, "failed"
        if failure is None and self.config.output.plots and self.summary.frames:
            failure = write_plots_of(self.core, self._first_frame, self.out_dir)
            status = "failed" if failure else status
        # Last, so its status covers every other output; on a full disk it still says "failed".
        summary = self._closing(status, error or (str(failure) if failure else None))
        self.summary, summary_failure = self._summary_file.close(summary)
        self.folder.close()
        failure = failure or summary_failure
        self.outputs.end(self.summary.status)
        if failure is not None and error is None:  # with an error, the caller reports that one
            raise failure
        return self.summary


def processed_fps(source: FrameSource, config: Config) -> float:
    """Frames per second the pipeline sees of ``source``: fewer with ``source.sample_every_s`` (the
    tracker's buffers and gates are set from it)."""
    interval_s = config.source.sample_every_s
    return min(float(source.fps), 1.0 / interval_s) if interval_s else float(source.fps)
