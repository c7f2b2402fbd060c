"""Runs the pipeline over one slice of a video: a warm-up that is tracked but not counted, then
the slice's frames, counted and written as ``vpipe run`` writes a whole video.

The slice's frames go through a :class:`~pipeline.run.source_run.SourceRun`, as a whole video's do
(same detector, tracker, counters, outputs, same set-up, per-frame step and finish), so a slice
counts what a whole-video run counts on its frames. Outputs cover the counted frames only:
``counts.csv`` (line counts cumulative from the slice's start), ``events.jsonl``, ``intervals.csv``
(the whole video's bins, the slice's share of them), ``annotated.mp4``, ``summary.json``, plots.
Frame indices and timestamps are those of the whole video.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import av

from pipeline.batch.slicing import SliceSpec
from pipeline.concurrency import PrefetchIterator
from pipeline.config import Config
from pipeline.errors import PipelineError, SourceError
from pipeline.io.sources.files import TRUNCATION_TOLERANCE_FRAMES, Frame, VideoFileSource
from pipeline.models import Detector
from pipeline.run.frame_pipeline import Need
from pipeline.run.source_run import SourceRun
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
    # A slice reads every frame of its range: its tracker runs at the video's rate.
    config = dataclasses.replace(config, source=dataclasses.replace(config.source, sample_every_s=None))
    source = SliceSource(config.source.path, spec)
    with ExitStack() as stack:
        stack.callback(source.close)
        config.validate_geometry(source.width, source.height)
        detector = Detector(config.model, frame_size=(source.width, source.height), origin=config.origin)
        set_torch_threads(detector.backend)
        part = SlicePart(spec.name, spec.start_frame)
        run = SourceRun(config, source, detector, Path(config.output.dir), part=part)
        stack.callback(run.finish, "failed", "stopped by an error")  # an unexpected error: outputs still finalized
        frames = PrefetchIterator(source, maxsize=4)
        stack.callback(frames.close)
        try:
            for frame in frames:
                need = run.detection_need(frame)
                run.process(frame, detector(frame.image) if need is Need.DETECT else None, held=need is Need.HOLD)
        except KeyboardInterrupt:
            return run.finish("interrupted")
        except PipelineError as exc:
            run.finish("failed", str(exc))
            raise
        return run.finish("truncated" if source.truncated else "completed")
