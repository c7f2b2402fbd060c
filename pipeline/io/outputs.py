"""The files of one run folder, fed one :class:`~pipeline.frame_pipeline.FrameResult` at a time.

``annotated.mp4`` (drawn and encoded on a background thread, with the counts frozen on each
frame), ``counts.csv``, ``events.jsonl`` and, with parking, ``parking.jsonl``; every file is
flushed per frame. With ``output.rotate`` they move on together to numbered segments
(``counts.0001.csv``, ...), so a rotation never splits a frame's records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from pipeline.annotators.frame import FrameAnnotator
from pipeline.concurrency import BackgroundWorker
from pipeline.config import OutputConfig, parse_rotation
from pipeline.frame_pipeline import FrameResult
from pipeline.io.publish import Publisher
from pipeline.io.sinks import CountsCsvSink, H264VideoSink, JsonlSink


class FrameViewer(Protocol):
    """Something that shows annotated frames live (``--serve``, ``--show``)."""

    def publish(
        self, source: str, image_bgr: np.ndarray, frame_index: int, timestamp_s: float, counts: dict[str, Any]
    ) -> None: ...

    def end(self, source: str, status: str) -> None:
        """``source`` has ended with ``status``: it will publish no more frames."""


def segment_path(path: Path, index: int) -> Path:
    """``counts.csv`` for the first segment of a rotated output, then ``counts.0001.csv``, ...

    Example:
        >>> segment_path(Path("runs/a/counts.csv"), 2).name
        'counts.0002.csv'
    """
    return path if index == 0 else path.with_name(f"{path.stem}.{index:04d}{path.suffix}")


class RunOutputs:
    """Writes one run folder.

    Args:
        out_dir: The folder (created if missing).
        output: The ``output`` section (video, encoder settings, rotation).
        columns: The columns of ``counts.csv``.
        fps: The video's frame rate.
        video_size: (width, height) of ``annotated.mp4``; frames of another size are scaled to it.
        annotator: Draws the frames (None: nothing to draw, e.g. ``--no-video`` without viewers).
        viewers: Live views to publish each annotated frame to, under ``name``.
        name: The source's name for the viewers.
        parking: Whether to write ``parking.jsonl``.
        publisher: Live event streams fed the same events (and periodic counts); None: none.
    """

    def __init__(
        self,
        out_dir: Path,
        output: OutputConfig,
        columns: Sequence[str],
        fps: Any,
        video_size: tuple[int, int],
        annotator: FrameAnnotator,
        viewers: Sequence[FrameViewer] = (),
        name: str = "",
        parking: bool = False,
        publisher: Publisher | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.output = output
        self.columns = list(columns)
        self.fps = fps
        self.video_size = video_size
        self.annotator = annotator
        self.viewers = list(viewers)
        self.name = name
        self.with_parking = parking
        self.publisher = publisher
        self.rotation = parse_rotation(output.rotate) if output.rotate else None
        self.segment = 0
        self._segment_started_s: float | None = None
        out_dir.mkdir(parents=True, exist_ok=True)
        self._open()

    @property
    def counts_path(self) -> Path:
        """The first segment's ``counts.csv`` (what the counts plot reads)."""
        return self.out_dir / "counts.csv"

    def _open(self) -> None:
        stack = self._stack = ExitStack()
        index = self.segment
        self.video: H264VideoSink | None = None
        self.drawing: BackgroundWorker[FrameResult] | None = None
        if self.output.video:
            path = segment_path(self.out_dir / "annotated.mp4", index)
            self.video = stack.enter_context(H264VideoSink.for_output(path, *self.video_size, self.fps, self.output))
        if self.video is not None or self.viewers:
            # Entered after the video sink, so it is drained (all frames encoded) before the sink closes.
            self.drawing = stack.enter_context(BackgroundWorker(self._draw, maxsize=4))
        self.counts = stack.enter_context(CountsCsvSink(segment_path(self.counts_path, index), self.columns))
        self.events = stack.enter_context(JsonlSink(segment_path(self.out_dir / "events.jsonl", index)))
        self.parking_log = None
        if self.with_parking:
            self.parking_log = stack.enter_context(JsonlSink(segment_path(self.out_dir / "parking.jsonl", index)))

    def _draw(self, result: FrameResult) -> None:
        frame = result.frame
        image = self.annotator.annotate(frame.image, result.tracked, frame.timestamp_s, result.view)
        if self.video is not None:
            if image.shape[1::-1] != self.video_size:  # the source changed resolution: the video keeps its size
                image = cv2.resize(image, self.video_size, interpolation=cv2.INTER_AREA)
            self.video.write(image, frame.timestamp_s)
        for viewer in self.viewers:
            viewer.publish(self.name, image, frame.frame_index, frame.timestamp_s, result.counts)

    def write(self, result: FrameResult, row: Mapping[str, Any] | None = None) -> None:
        """Write one frame's row, events and drawing (``row``: instead of ``result.row``)."""
        self._rotate_if_due(result.frame.timestamp_s)
        if self.drawing is not None:  # first: a failed video (a full disk) stops before this frame's row
            self.drawing.submit(result)
        self.counts.write(result.row if row is None else row)
        self.events.write(event.to_record() for event in result.events)
        if self.publisher is not None:
            self.publisher.publish(event.to_record() for event in result.events)
            self.publisher.counts(result.row if row is None else row, result.frame.timestamp_s)

    def write_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write events that are not a counter's (connection events, resolution changes)."""
        records = list(records)
        self.events.write(records)
        if self.publisher is not None:
            self.publisher.publish(records)

    def write_parking(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write closed occupancy intervals to ``parking.jsonl``."""
        if self.parking_log is not None:
            self.parking_log.write(records)

    def _rotate_if_due(self, timestamp_s: float) -> None:
        if self._segment_started_s is None:
            self._segment_started_s = timestamp_s
        if self.rotation is None:
            return
        kind, limit = self.rotation
        if kind == "time":
            due = timestamp_s - self._segment_started_s >= limit
        else:
            names = ["annotated.mp4", "counts.csv", "events.jsonl"]
            paths = [segment_path(self.out_dir / name, self.segment) for name in names]
            due = any(p.exists() and p.stat().st_size >= limit for p in paths)
        if due:
            self._stack.close()
            self.segment += 1
            self._segment_started_s = timestamp_s
            self._open()

    def end(self, status: str) -> None:
        """Tell the viewers this source has ended with ``status``."""
        for viewer in self.viewers:
            viewer.end(self.name, status)

    def close(self) -> None:
        """Finish every file (the frames in flight are drawn and encoded first). Idempotent."""
        self._stack.close()
