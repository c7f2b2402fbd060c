"""``--split``: cutting a long video into time slices that are processed independently.

Slice ``k`` counts the frames whose timestamp (from the container, relative to the first frame)
lies in ``[k * split, (k + 1) * split)``. Before its first counted frame it runs the tracker and
the counters over a warm-up of ``overlap`` seconds whose events are discarded, so a vehicle
crossing a line just after a boundary is tracked as in a whole-video run, and one crossing just
before it is counted by the previous slice only. The boundaries depend only on the timestamps
(exact fractions), so every run of the same file gets the same slices.

Example:
    >>> pts = list(range(0, 10 * 1001, 1001))  # ten frames at 29.97 fps (time base 1/30000)
    >>> [(s.warmup_frame, s.start_frame, s.end_frame) for s in
    ...  plan_slices(pts, Fraction(1, 30000), split_s=Fraction(1, 10), overlap_s=Fraction(1, 15))]
    [(0, 0, 3), (1, 3, 6), (4, 6, 9), (7, 9, 10)]
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from pipeline.errors import SourceError
from pipeline.io.sources.frames import error_reason


@dataclass(frozen=True)
class SliceSpec:
    """Which frames one slice decodes, tracks and counts.

    Frame indices are positions in presentation order in the whole video; ``*_pts`` are the
    matching container timestamps, used to seek and to recognise the frames.

    Attributes:
        index: ``k``: the slice covers ``[k * split, (k + 1) * split)`` seconds of the video.
        warmup_frame: First frame processed (tracked, not counted).
        start_frame: First counted frame.
        end_frame: One past the last counted frame.
        origin_pts: Timestamp of the video's first frame: timestamps are relative to it.
        warmup_pts: Timestamp of ``warmup_frame``.
        start_pts: Timestamp of ``start_frame``.
        end_pts: Timestamp of ``end_frame``, or None when the slice runs to the end.
        time_base: The stream's time base, e.g. ``"1/30000"``.
    """

    index: int
    warmup_frame: int
    start_frame: int
    end_frame: int
    origin_pts: int
    warmup_pts: int
    start_pts: int
    end_pts: int | None
    time_base: str

    @property
    def name(self) -> str:
        """The slice's output folder and id suffix, e.g. ``part-0003``."""
        return f"part-{self.index:04d}"

    @property
    def warmup_frames(self) -> int:
        return self.start_frame - self.warmup_frame

    def seconds(self, pts: int) -> float:
        """A timestamp of this video in seconds from its first frame."""
        return float((pts - self.origin_pts) * Fraction(self.time_base))

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SliceSpec:
        return cls(**record)


def plan_slices(pts: Sequence[int], time_base: Fraction, split_s: Fraction, overlap_s: Fraction) -> list[SliceSpec]:
    """Cut a video into slices from its frames' timestamps.

    Args:
        pts: Every frame's timestamp in presentation (sorted) order, in ``time_base`` units.
        time_base: Seconds per timestamp unit.
        split_s: Slice length in seconds (> 0).
        overlap_s: Warm-up before each slice in seconds (>= 0).

    Returns:
        The non-empty slices in time order (a gap in the video longer than ``split_s`` leaves no
        empty slice behind).
    """
    if not pts:
        return []
    times = [(p - pts[0]) * time_base for p in pts]
    slices = []
    for k in range(math.floor(times[-1] / split_s) + 1):
        start = bisect_left(times, k * split_s)
        end = bisect_left(times, (k + 1) * split_s)
        if start == end:
            continue
        warmup = bisect_left(times, max(Fraction(0), k * split_s - overlap_s))
        slices.append(
            SliceSpec(
                index=k,
                warmup_frame=warmup,
                start_frame=start,
                end_frame=end,
                origin_pts=pts[0],
                warmup_pts=pts[warmup],
                start_pts=pts[start],
                end_pts=pts[end] if end < len(pts) else None,
                time_base=str(time_base),
            )
        )
    return slices


def probe_timestamps(path: str | Path, max_frames: int | None = None) -> tuple[list[int], Fraction]:
    """Every frame's container timestamp, from the packets alone (nothing is decoded).

    Args:
        path: A local video file.
        max_frames: Keep only the first frames, as ``source.max_frames`` does.

    Returns:
        The sorted timestamps (presentation order) and the stream's time base.

    Raises:
        SourceError: The file cannot be read, or its frames carry no timestamps.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SourceError(f"{path}: no video stream in file")
            stream = container.streams.video[0]
            pts = sorted(
                packet.pts
                for packet in container.demux(stream)
                if packet.size and packet.pts is not None and not packet.is_discard
            )
            time_base = stream.time_base
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"{path}: cannot read video ({error_reason(exc)})") from None
    if not pts or time_base is None:
        raise SourceError(f"{path}: no frame timestamps to split on (damaged, empty, or a raw stream)")
    return (pts[:max_frames] if max_frames else pts), Fraction(time_base)
