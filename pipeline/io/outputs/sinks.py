"""Output sinks: the annotated H.264 video, the per-frame counts CSV, the events JSONL, the summary.

Every sink writes as it goes and flushes per frame, so a run that dies leaves valid files up to the
last frame it finished; :meth:`close` is safe to call twice. An I/O error (a full disk) raises
:class:`~pipeline.errors.OutputError` after cutting the file back to its last complete record (a
CSV row, a JSON line, a video fragment), so what was written stays readable.

Example::

    with CountsCsvSink("counts.csv", ["frame_index", "timestamp_s", "main_in"]) as sink:
        sink.write({"frame_index": 0, "timestamp_s": 0.0, "main_in": 1})
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn, Self

import av
import cv2
import numpy as np

from pipeline.closing import Closing
from pipeline.config import OutputConfig
from pipeline.io.outputs.folders import output_error

TIME_BASE = Fraction(1, 90_000)
"""The video's clock: 90 kHz, as MPEG's, exact for 25, 30 and 30000/1001 fps."""

_ENCODER_DEFAULTS = OutputConfig()
"""The sink's defaults are the config's, so ``crf``, ``preset`` and ``lookahead`` have one default each."""


class _WholeWriteFile(io.FileIO):
    """An unbuffered binary file whose :meth:`write` writes everything or raises (never a short write),
    so each call reaches the OS at once and a failure is never silent."""

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            view = view[super().write(view) :]
        return total


class _RecordFile:
    """Appends whole records (lines); a failed write is cut back to the end of the last whole one.
    A new file, or with ``append`` the end of the file there."""

    def __init__(self, path: Path, append: bool = False) -> None:
        self.path = path
        try:
            self._file = _WholeWriteFile(path, "a" if append else "w")
            self._size = self._file.seek(0, os.SEEK_END)
        except OSError as exc:
            raise output_error(path, exc) from None

    @property
    def size(self) -> int:
        """Bytes in the file."""
        return self._size

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            with suppress(OSError):
                self._file.truncate(self._size)
            raise output_error(self.path, exc) from None
        self._size += len(data)

    def close(self) -> None:
        self._file.close()


def playable_length(path: str | Path) -> int:
    """Bytes of a fragmented MP4 up to the end of its last complete fragment (``moof`` + ``mdat``):
    what still decodes when the writing stopped half-way through a box."""
    path = Path(path)
    size, end, position = path.stat().st_size, 0, 0
    with path.open("rb") as file:
        while position + 8 <= size:
            file.seek(position)
            header = file.read(16)
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) == 16:  # a 64-bit size follows the type
                box_size = struct.unpack(">Q", header[8:])[0]
            if box_size < 8 or position + box_size > size:
                break
            position += box_size
            if kind != b"moof":  # a fragment's header is only whole with its media data
                end = position
    return end


class H264VideoSink(Closing):
    """Writes BGR frames to a browser-playable H.264 (yuv420p) MP4 with PyAV; no system FFmpeg needed.

    The MP4 is fragmented (a self-contained fragment per keyframe interval), so the file written so
    far still plays if the process is killed before :meth:`close`. Frames are shown at the times
    given to :meth:`write` (variable frame rate on a 90 kHz clock), so the video's time is the
    source's time, gaps and dropped frames included; without times each frame lasts ``1 / fps``.

    Args:
        path: Output ``.mp4`` file.
        width: Frame width in pixels.
        height: Frame height in pixels.
        fps: Nominal frame rate (keyframe interval; how long a frame written without a time lasts).
        crf: x264 constant rate factor (quality; lower is better).
        preset: x264 speed preset.
        lookahead: Frames of rate-control lookahead with x264's macroblock tree (0: neither);
            None keeps the preset's own.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: Fraction,
        crf: int = _ENCODER_DEFAULTS.crf,
        preset: str = _ENCODER_DEFAULTS.preset,
        lookahead: int | None = _ENCODER_DEFAULTS.lookahead,
    ) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self._closed = False
        try:
            # Our own file object: on a full disk (a short write, then ENOSPC) FFmpeg's file writer
            # went on silently, leaving a video that stops decoding part-way.
            self._file = _WholeWriteFile(self.path, "w")
            self._container = av.open(
                self._file,
                mode="w",
                format="mp4",
                options={"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"},
            )
        except OSError as exc:
            raise output_error(self.path, exc) from None
        stream = self._container.add_stream("libx264", rate=fps)
        # yuv420p needs even dimensions; odd ones are padded by one black pixel.
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = TIME_BASE
        gop = max(1, round(float(fps) * 2))
        stream.options = {"crf": str(crf), "preset": preset, "g": str(gop), "bf": "0"}
        if lookahead is not None:
            stream.options = {**stream.options, "x264-params": f"rc-lookahead={lookahead}:mbtree={int(lookahead > 0)}"}
        self._stream = stream
        self._frame_ticks = 1 / (fps * TIME_BASE)
        self._first_s: float | None = None
        self._last_pts = -1
        self._frames = 0

    @classmethod
    def for_output(cls, path: str | Path, width: int, height: int, fps: Fraction, output: OutputConfig) -> Self:
        """A sink encoding as the run's ``output`` config says (``crf``, ``preset``, ``lookahead``)."""
        return cls(path, width, height, fps, crf=output.crf, preset=output.preset, lookahead=output.lookahead)

    def write(self, image: np.ndarray, timestamp_s: float | None = None) -> None:
        """Encode one BGR frame of the configured size, shown at ``timestamp_s`` (seconds in the
        source; the first frame written starts the video) or else ``1 / fps`` after the previous one.
        Nothing once an I/O error stopped the video."""
        if self._closed:
            return
        if image.shape[0] != self.height or image.shape[1] != self.width:
            raise ValueError(f"frame is {image.shape[1]}x{image.shape[0]}, video is {self.width}x{self.height}")
        if image.shape[:2] != (self._stream.height, self._stream.width):
            padded = np.zeros((self._stream.height, self._stream.width, 3), np.uint8)
            padded[: self.height, : self.width] = image
            image = padded
        # OpenCV's BGR to I420 costs far less than PyAV's (swscale) and gives the same BT.601 YUV (±1).
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        if timestamp_s is None:
            pts = max(round(self._frames * self._frame_ticks), self._last_pts + 1)
        else:
            self._first_s = timestamp_s if self._first_s is None else self._first_s
            pts = max(round((timestamp_s - self._first_s) / TIME_BASE), self._last_pts + 1)  # never back in time
        frame.pts = self._last_pts = pts
        self._frames += 1
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> NoReturn:
        """Stop writing after an I/O error: cut the file back to its last complete fragment."""
        self._closed = True
        with suppress(Exception):  # it fails writing its trailer too; the file is cut below
            self._container.close()
        self._file.close()
        with suppress(OSError):
            os.truncate(self.path, playable_length(self.path))
        raise output_error(self.path, exc) from None

    def close(self) -> None:
        """Flush the encoder and finalize the file."""
        if self._closed:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except OSError as exc:
            self._fail(exc)
        self._closed = True
        self._file.close()


def _cells(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()}


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A whole CSV file's text, written as :class:`CountsCsvSink` writes it (floats with 4 decimals)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), extrasaction="raise")
    writer.writeheader()
    writer.writerows(_cells(row) for row in rows)
    return text.getvalue()


class CountsCsvSink(Closing):
    """One row per frame with fixed columns (see :meth:`pipeline.analytics.Analytics.row`); with
    ``append``, rows go on after those of the file there (the header only if it is empty)."""

    def __init__(self, path: str | Path, columns: Sequence[str], append: bool = False) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self._file = _RecordFile(self.path, append)
        self._row = io.StringIO()
        self._writer = csv.DictWriter(self._row, fieldnames=self.columns, extrasaction="raise")
        if self._file.size == 0:
            self._writer.writeheader()
            self._flush()

    def _flush(self) -> None:
        self._file.write(self._row.getvalue().encode("utf-8"))
        self._row.seek(0)
        self._row.truncate()

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one frame's row (floats with 4 decimals) and flush."""
        self._writer.writerow(_cells(row))
        self._flush()

    def close(self) -> None:
        self._file.close()


class JsonlSink(Closing):
    """Appends one JSON object per line and flushes, so every complete line is a valid record."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = _RecordFile(self.path)

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        lines = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
        if lines:
            self._file.write(lines.encode("utf-8"))

    def close(self) -> None:
        self._file.close()


def json_bytes(data: Mapping[str, Any]) -> bytes:
    """``data`` as the indented UTF-8 JSON text every JSON file of a run folder holds."""
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def write_json_atomic(path: str | Path, data: Mapping[str, Any], pad_to: int = 0) -> None:
    """Write ``data`` as indented JSON via a temporary file, so readers never see half a file.

    Args:
        path: The file.
        data: What to write.
        pad_to: Pad the text with trailing spaces (still valid JSON) to at least this many bytes,
            so the file holds that much room for a later rewrite in place.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(json_bytes(data).ljust(pad_to))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
