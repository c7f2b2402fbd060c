"""The files of one run folder, fed one :class:`~pipeline.run.frame_pipeline.FrameResult` at a time.

``annotated.mp4`` (drawn and encoded on a background thread, with the counts frozen on each
frame), ``counts.csv``, ``events.jsonl`` and, with parking, ``parking.jsonl``; every file is
flushed per frame. With ``output.rotate`` they move on together to numbered segments
(``counts.0001.csv``, ...), so a rotation never splits a frame's records; a run that continues an
earlier one starts at the next number. Events are stamped and numbered as they are written
(:class:`~pipeline.io.outputs.records.RecordStamp`). ``summary.json`` (:class:`SummaryFile`) is there
from the start, with the run's status.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.annotators.frame import FrameAnnotator
from pipeline.annotators.scaled import draw_at_size
from pipeline.concurrency import BackgroundWorker
from pipeline.config import OutputConfig, parse_rotation
from pipeline.config.columns import Column
from pipeline.errors import OutputError
from pipeline.io.outputs.folders import output_error, prune_videos, segment_path
from pipeline.io.outputs.records import RecordStamp, new_run_id, utc_text
from pipeline.io.outputs.sinks import CountsCsvSink, H264VideoSink, JsonlSink, json_bytes, write_json_atomic
from pipeline.io.publish.publisher import Publisher
from pipeline.run.frame_pipeline import FrameResult
from pipeline.run.summary import RunSummary
from pipeline.store.sink import StoreSink


class FrameViewer(Protocol):
    """Something that shows annotated frames live (``--serve``, ``--show``)."""

    def publish(
        self, source: str, image_bgr: np.ndarray, frame_index: int, timestamp_s: float, counts: dict[str, Any]
    ) -> None: ...

    def describe_columns(self, source: str, columns: Mapping[str, Column]) -> None:
        """What each count column ``source`` publishes counts."""

    def end(self, source: str, status: str) -> None:
        """``source`` has ended with ``status``: it will publish no more frames."""


class Rotation:
    """When a run folder's files move on to the next segment: every period of frame time, or once a
    file of the segment has reached a size.

    Example:
        >>> rotation = Rotation.parse("10s")
        >>> [rotation.due(t, Path("runs/x"), 0) for t in (3.0, 12.9, 13.0)]
        [False, False, True]
    """

    def __init__(self, kind: str, limit: float) -> None:
        self.kind, self.limit = kind, limit
        self._started_s: float | None = None

    @classmethod
    def parse(cls, spec: str) -> Rotation:
        parsed = parse_rotation(spec)
        if parsed is None:
            raise ValueError(f"not a rotation: {spec!r}")
        return cls(*parsed)

    def due(self, timestamp_s: float, out_dir: Path, segment: int) -> bool:
        """Whether the frame at ``timestamp_s`` starts a new segment (the first frame starts the clock)."""
        if self._started_s is None:
            self._started_s = timestamp_s
        if self.kind == "time":
            due = timestamp_s - self._started_s >= self.limit
        else:
            paths = [segment_path(out_dir / name, segment) for name in ("annotated.mp4", "counts.csv", "events.jsonl")]
            due = any(p.exists() and p.stat().st_size >= self.limit for p in paths)
        if due:
            self._started_s = timestamp_s
        return due


SUMMARY_RESERVE_BYTES = 4096
"""Room a running ``summary.json`` keeps (trailing spaces) for its final status on a full disk."""

BRIEF_SUMMARY_KEYS = ("source", "frames", "output_dir", "status", "run_id", "time_utc", "error")
"""What a failed run's ``summary.json`` says at least, when the whole summary does not fit its room."""


class SummaryFile:
    """A run's ``summary.json``: written when the run starts (``"status": "running"``), rewritten
    while it runs and replaced with the final summary at its end, each time atomically.

    A full disk must not cost the run its status: the final replace needs room for a temporary
    file, which a disk filled by another process does not have. So every running version is padded
    with spaces to :data:`SUMMARY_RESERVE_BYTES`, and when the replace fails the failed summary is
    written over those bytes in place. Overwriting bytes a file already holds takes no free space on
    file systems that write in place (ext4, XFS, tmpfs); a copy-on-write one (Btrfs, ZFS) may still
    refuse it, and then the file keeps saying ``running`` while stderr says why the run failed.

    Args:
        path: The file.
        summary: The summary at the start.

    Raises:
        OutputError: The start summary cannot be written.
    """

    def __init__(self, path: Path, summary: RunSummary) -> None:
        self.path = path
        try:
            write_json_atomic(path, _dated(summary).to_json(), pad_to=SUMMARY_RESERVE_BYTES)
        except OSError as exc:
            raise output_error(path, exc) from None

    def update(self, summary: RunSummary) -> None:
        """Replace the running summary; a disk that refuses it keeps the previous one (the outputs,
        written every frame, report that disk)."""
        with suppress(OSError):
            write_json_atomic(self.path, _dated(summary).to_json(), pad_to=SUMMARY_RESERVE_BYTES)

    def close(self, summary: RunSummary) -> tuple[RunSummary, OutputError | None]:
        """Replace it with the final ``summary``; if the disk refuses, mark the run failed in place.

        Returns:
            The summary the run ended with (``failed``, with the disk's error, if it was refused)
            and that error, or None.
        """
        summary = _dated(summary)
        try:
            write_json_atomic(self.path, summary.to_json())
            return summary, None
        except OSError as exc:
            error = output_error(self.path, exc)
        failed = dataclasses.replace(summary, status="failed", error=summary.error or str(error))
        data = failed.to_json()
        brief = {key: data[key] for key in BRIEF_SUMMARY_KEYS if key in data}
        with suppress(OSError):  # else the file keeps its last status, and stderr says why the run failed
            room = self.path.stat().st_size
            fitting = [text for text in map(json_bytes, (data, brief)) if len(text) <= room]
            if fitting:
                with self.path.open("r+b") as file:
                    file.write(fitting[0])
                    file.truncate()  # shrinking takes no space
        return failed, error


def _dated(summary: RunSummary) -> RunSummary:
    """``summary`` as written now (its ``time_utc``)."""
    return dataclasses.replace(summary, time_utc=utc_text(time.time()))


class RunOutputs:
    """Writes one run folder.

    Args:
        out_dir: The folder (created if missing).
        output: The ``output`` section (video, encoder settings, rotation).
        columns: The columns of ``counts.csv``.
        fps: The video's frame rate.
        video_size: (width, height) of ``annotated.mp4`` and of the viewers' frames; frames of another
            size are scaled to it before drawing.
        annotator: Draws the frames (None: nothing to draw, e.g. ``--no-video`` without viewers).
        viewers: Live views to publish each annotated frame to, under ``name``.
        name: The source's name for the viewers.
        column_kinds: What each analytics column counts, told to the viewers (the page's tables follow it).
        parking: Whether to write ``parking.jsonl``.
        publisher: Live event streams fed the same events (and periodic counts); None: none.
        store: The store, fed the same events and the closed interval bins; None: none.
        stamp: Stamps and numbers the events (default: a new run's).
        first_segment: The number of the first files (0: ``counts.csv``; 2: ``counts.0002.csv``).
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
        column_kinds: Mapping[str, Column] | None = None,
        parking: bool = False,
        publisher: Publisher | None = None,
        store: StoreSink | None = None,
        stamp: RecordStamp | None = None,
        first_segment: int = 0,
    ) -> None:
        self.out_dir = out_dir
        self.output = output
        self.columns = list(columns)
        self.fps = fps
        self.video_size = video_size
        self.annotator = annotator
        self.viewers = list(viewers)
        self.name = name
        for viewer in self.viewers:
            viewer.describe_columns(name, column_kinds or {})
        self.with_parking = parking
        self.publisher = publisher
        self.store = store
        self.rotation = Rotation.parse(output.rotate) if output.rotate else None
        self.stamp = stamp or RecordStamp(new_run_id())
        self.segment = first_segment
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
            if self.output.keep_video is not None:
                prune_videos(self.out_dir, index, self.output.keep_video)
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
        # scaled first when the video is smaller than the source (output.video_width, or the source
        # changed resolution: the video keeps its size), so the drawing costs the video's size too
        image = draw_at_size(
            self.annotator, frame.image, result.tracked, frame.timestamp_s, result.view, self.video_size
        )
        if self.video is not None:
            self.video.write(image, frame.timestamp_s)
        for viewer in self.viewers:
            viewer.publish(self.name, image, frame.frame_index, frame.timestamp_s, result.counts)

    def write(self, result: FrameResult, row: Mapping[str, Any] | None = None) -> None:
        """Write one frame's row, events and drawing (``row``: instead of ``result.row``)."""
        self._rotate_if_due(result.frame.timestamp_s)
        if self.drawing is not None:  # first: a failed video (a full disk) stops before this frame's row
            self.drawing.submit(result)
        self.counts.write(result.row if row is None else row)
        stamped = self._stamped(event.to_record() for event in result.events)
        if self.publisher is not None:
            self.publisher.counts(result.row if row is None else row, result.frame.timestamp_s)
        if self.store is not None:
            self.store.write(stamped, result.frame.timestamp_s)

    def write_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Stamp and number events of no counter's (connection events, resolution changes), write them
        and send them to the event streams and the store."""
        stamped = self._stamped(records)
        if self.store is not None:
            self.store.write_records(stamped)

    def _stamped(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Stamp and number events, write them to ``events.jsonl`` and send them to the event streams."""
        stamped = [self.stamp.event(record) for record in records]
        self.events.write(stamped)
        if self.publisher is not None:
            self.publisher.publish(stamped)
        return stamped

    def write_intervals(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Interval bins that closed (written to ``intervals.csv`` already): to the store."""
        if self.store is not None:
            self.store.write_intervals(rows)

    def write_parking(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write closed occupancy intervals to ``parking.jsonl``."""
        if self.parking_log is not None:
            self.parking_log.write(records)

    def _rotate_if_due(self, timestamp_s: float) -> None:
        if self.rotation is not None and self.rotation.due(timestamp_s, self.out_dir, self.segment):
            self._stack.close()
            self.segment += 1
            self._open()

    def end(self, status: str) -> None:
        """Tell the viewers and the store this source has ended with ``status``."""
        for viewer in self.viewers:
            viewer.end(self.name, status)
        if self.store is not None:
            self.store.end(status)

    def close(self) -> None:
        """Finish every file (the frames in flight are drawn and encoded first), then the event
        streams (their last events included), then commit the store's last records. Idempotent."""
        try:
            self._stack.close()
        finally:
            publisher, self.publisher = self.publisher, None
            try:
                if publisher is not None:
                    publisher.close()
            finally:
                if self.store is not None:
                    self.store.close()
