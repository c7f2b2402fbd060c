"""Runs the pipeline over one slice of a video: a warm-up that is tracked but not counted, then
the slice's frames, counted and written as ``vpipe run`` writes a whole video.

The stages are those of :func:`pipeline.run.runner.run` (same detector, tracker, counters, sinks,
same per-frame step), so a slice counts what a whole-video run counts on its frames. Outputs
cover the counted frames only: ``counts.csv`` (line counts cumulative from the slice's start),
``events.jsonl``, ``intervals.csv`` (the whole video's bins, the slice's share of them),
``annotated.mp4``, ``summary.json``, plots. Frame indices and timestamps are
those of the whole video.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import av
import numpy as np

from pipeline.analytics.movements import movement_name
from pipeline.annotators.frame import FrameAnnotator
from pipeline.batch.slicing import SliceSpec
from pipeline.batch.tally import SliceTally
from pipeline.concurrency import PrefetchIterator
from pipeline.config import Config
from pipeline.errors import PipelineError, SourceError
from pipeline.io.intervals_file import IntervalsFile
from pipeline.io.outputs import RunOutputs
from pipeline.io.plots import write_plots
from pipeline.io.sinks import write_json_atomic
from pipeline.io.sources import TRUNCATION_TOLERANCE_FRAMES, Frame, VideoFileSource
from pipeline.models import Detector
from pipeline.run.frame_pipeline import FramePipeline
from pipeline.run.source_run import summary_header
from pipeline.run.summary import RunSummary, SlicePart
from pipeline.runtime import set_torch_threads


class SliceSource(VideoFileSource):
    """Frames ``[spec.warmup_frame, spec.end_frame)`` of a video file, with the whole video's
    frame indices and timestamps; decoding starts at the keyframe before the warm-up. The last
    slice of a file that ends before the frames its header announces (cut short: its last packets
    do not decode) ends where the decoder does, :attr:`truncated`, as a whole-video run would.

    Args:
        path: The video file the slice was planned on.
        spec: The slice.

    Raises:
        SourceError: The file cannot be opened, or does not hold the frames the plan expects.
    """

    def __init__(self, path: str | Path, spec: SliceSpec) -> None:
        super().__init__(path)
        self.spec = spec
        self.frame_count = spec.end_frame - spec.warmup_frame

    def _decode_from_warmup(self) -> Iterator[av.VideoFrame]:
        """Decoded frames from a keyframe at or before the warm-up (from the start if seeking overshoots)."""
        for target in (self.spec.warmup_pts, self.spec.origin_pts):
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
            decoded = self._container.decode(self._stream)
            first = next(decoded, None)
            if first is None or first.pts is None or first.pts <= self.spec.warmup_pts:
                break
        return itertools.chain([first] if first is not None else [], decoded)

    def __iter__(self) -> Iterator[Frame]:
        spec, expected, produced = self.spec, self.frame_count or 0, 0
        try:
            for decoded in self._decode_from_warmup():
                if decoded.pts is None or decoded.pts < spec.warmup_pts:
                    continue
                if produced == expected or (spec.end_pts is not None and decoded.pts >= spec.end_pts):
                    break
                image = decoded.to_ndarray(format="bgr24")
                yield Frame(image, spec.warmup_frame + produced, spec.seconds(decoded.pts))
                produced += 1
        except av.error.FFmpegError as exc:
            reason = str(exc) or type(exc).__name__
            raise SourceError(
                f"{self.path}: decoding failed at frame {spec.warmup_frame + produced} ({reason})"
            ) from None
        declared = self._declared_frames or 0
        if produced < expected and spec.end_pts is None and declared > spec.end_frame + TRUNCATION_TOLERANCE_FRAMES:
            self.truncated = True
        elif produced != expected:
            raise SourceError(
                f"{self.path}: {spec.name} decoded {produced} of its {expected} frames "
                "(the file changed since it was planned, or it decodes differently than it demuxes); "
                "run it without --split"
            )


def run_slice(config: Config, spec: SliceSpec) -> RunSummary:
    """Process one slice of ``config.source.path`` and write its outputs to ``config.output.dir``.

    Args:
        config: A validated config with ``source.path`` and ``output.dir`` set; parking slots are
            not supported (occupancy intervals span slices).
        spec: The slice, planned on this file.

    Returns:
        The slice's summary (as written to ``summary.json``): the fields of a ``vpipe run`` summary
        with ``frames``, ``lines`` and ``zones`` over the counted frames, and the slice's
        :class:`~pipeline.run.summary.SlicePart`.

    Raises:
        PipelineError: Invalid input (found before any output is written) or a source that fails
            mid-way (outputs are finalized first).
    """
    if not config.source.path or not config.output.dir:
        raise config.error("source.path", "a slice needs source.path and output.dir")
    if config.parking.slots:
        raise config.error("parking", "parking slots cannot be split into slices; run without --split")
    source = SliceSource(config.source.path, spec)
    with ExitStack() as stack:
        stack.callback(source.close)
        config.validate_geometry(source.width, source.height)
        detector = Detector(config.model, frame_size=(source.width, source.height), origin=config.origin)
        set_torch_threads(detector.backend)
        core = FramePipeline(config, float(source.fps), detector.names, (source.width, source.height))
        movements = core.analytics.movements
        tally = SliceTally(
            [line.name for line in config.lines],
            [zone.name for zone in config.zones],
            lanes={line.name: [lane.name for lane in line.lanes] for line in config.lines},
            with_speed=core.analytics.speed is not None,
            movements=None if movements is None else [movement_name(*pair) for pair in movements.pairs],
        )
        out_dir = Path(config.output.dir)
        annotator = FrameAnnotator(config.draw, show_masks=detector.task == "segment")
        size = (source.width, source.height)
        outputs = RunOutputs(out_dir, config.output, core.columns, source.fps, size, annotator)
        stack.callback(outputs.close)
        intervals = IntervalsFile.for_run(out_dir, config, source, core.analytics)  # whole-video bins
        stack.callback(intervals.close)
        part = SlicePart(spec.name, spec.start_frame)
        summary = dataclasses.replace(
            summary_header(source, detector, core, out_dir), source=config.source.path, part=part
        )
        first_frame: np.ndarray | None = None
        end_s = 0.0
        started = time.perf_counter()

        def finish(status: str, error: str | None = None) -> RunSummary:
            elapsed = time.perf_counter() - started
            outputs.close()
            intervals.close()
            closed = dataclasses.replace(
                summary,
                processing_fps=round(summary.frames / elapsed, 2) if elapsed > 0 else 0.0,
                status=status,
                error=error or None,
                counted=True,
                counts=tally.summary(core.analytics.inside_at_end(end_s)),
                tracks_total=core.tracks.total,
                intervals=intervals.summary(),
            )
            write_json_atomic(out_dir / "summary.json", closed.to_json())
            if config.output.plots and summary.frames:
                write_plots(outputs.counts_path, core.heatmap, first_frame, out_dir)
            return closed

        frames = PrefetchIterator(source, maxsize=4)
        stack.callback(frames.close)
        try:
            for frame in frames:
                counted = frame.frame_index >= spec.start_frame
                if counted and first_frame is None:
                    first_frame = frame.image.copy()
                detections = detector(frame.image) if core.needs_detection(frame) else None
                result = core.step(frame, detections, counted=counted)
                if not counted:  # warm-up: the tracker and counters learn, nothing is counted or written
                    part.warmup_frames += 1
                    continue
                tally.add(result.events, core.analytics.zone_counts())
                outputs.write(result, row={**result.row, **tally.line_columns()})
                intervals.write(result)
                end_s = frame.timestamp_s + 1.0 / float(source.fps)
                summary.add_frame(frame.frame_index, frame.timestamp_s, end_s)
        except KeyboardInterrupt:
            return finish("interrupted")
        except PipelineError as exc:
            finish("failed", str(exc))
            raise
        return finish("truncated" if source.truncated else "completed")
