"""Line crossings checked one by one against a hand-made ground-truth list.

A ground-truth file (``tests/data/*_ground_truth.yaml``) lists, per line, every crossing with its
frame and direction, and optionally ``ambiguous`` crossings (real, but too close to the clip's end
or too marginal to demand). Each counted crossing is paired with at most one truth crossing of the
same line and direction whose frame is within the tolerance window; the pairing maximises the
number of matches (then minimises the frame offsets). What stays unpaired is a *miss* (truth) or
an *extra* (counted), so a total that is right only because a miss and an extra cancel shows up.
A counted crossing that pairs with an ambiguous entry is neither matched nor extra.

Example:
    >>> truth = [TruthCrossing("main", "in", 56), TruthCrossing("main", "in", 93)]
    >>> counted = [CountedCrossing("main", "in", 58), CountedCrossing("main", "in", 200)]
    >>> result = match_crossings(truth, counted, Tolerance(early_frames=3, late_frames=3))
    >>> [(row.line, row.direction, row.truth, row.counted, row.matched, row.missed, row.extra) for row in result.rows()]
    [('main', 'in', 2, 2, 1, 1, 1)]
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import lap
import numpy as np

from pipeline.analytics.events import Direction
from pipeline.errors import ConfigError
from pipeline.yaml_io import read_yaml

_UNMATCHED_COST = 1e6
"""Leaving a pair unmatched costs more than any allowed frame offset, so the most pairs win."""


@dataclass(frozen=True)
class TruthCrossing:
    """One crossing in a ground-truth file, at the clip's own frame index."""

    line: str
    direction: Direction
    frame: int
    ambiguous: bool = False


@dataclass(frozen=True)
class CountedCrossing:
    """One ``line_crossing`` event, its frame expressed in the ground truth's frame numbering."""

    line: str
    direction: Direction
    frame: int
    track_id: int = -1
    crossed_frame: int | None = None
    """When its anchor was on the line (``crossed_s``), if known: the count then stands for the span
    from here to ``frame``, when the crossing was confirmed."""

    def offset_from(self, truth_frame: int) -> int:
        """Frames from ``truth_frame`` to this count (to the nearer end of its span; 0 inside it)."""
        if self.crossed_frame is not None and self.crossed_frame <= truth_frame <= self.frame:
            return 0
        if self.crossed_frame is not None and truth_frame < self.crossed_frame:
            return self.crossed_frame - truth_frame
        return self.frame - truth_frame


@dataclass(frozen=True)
class Tolerance:
    """How far (in ground-truth frames) a counted crossing may be from the truth and still match.

    Attributes:
        early_frames: Frames a count may precede the truth frame.
        late_frames: Frames a count may follow it.
    """

    early_frames: int
    late_frames: int

    @classmethod
    def for_run(cls, fps: float, frame_step: int = 1, margin_s: float = 0.2) -> Tolerance:
        """The window for a run on every ``frame_step``-th frame of a clip at ``fps``.

        ``margin_s`` either side covers where a detector puts the box's edge and the few pixels of
        hysteresis beyond the line; a run on every Nth frame sees the crossing up to N - 1 frames
        later, or one sampled frame more when the first position past the line is still within
        the hysteresis distance.
        """
        margin = math.ceil(margin_s * fps)
        return cls(early_frames=margin, late_frames=margin + 2 * frame_step - 2)

    @classmethod
    def for_crossing_times(cls, fps: float, largest_gap_frames: int = 1, margin_s: float = 0.2) -> Tolerance:
        """The window around counts that span from when the anchor was on the line to the frame that
        confirmed it (``crossed_s``, see :func:`load_counted`): ``margin_s`` either side, as in
        :meth:`for_run`, plus half the largest gap between the frames the run saw, over which the
        crossing time is interpolated.

        Example:
            >>> Tolerance.for_crossing_times(30.0), Tolerance.for_crossing_times(30.0, 6)
            (Tolerance(early_frames=6, late_frames=6), Tolerance(early_frames=9, late_frames=9))
        """
        frames = math.ceil(margin_s * fps) + largest_gap_frames // 2
        return cls(early_frames=frames, late_frames=frames)

    def allows(self, offset_frames: int) -> bool:
        """Whether ``counted frame - truth frame`` is inside the window."""
        return -self.early_frames <= offset_frames <= self.late_frames


@dataclass(frozen=True)
class LineResult:
    """Totals for one line and direction."""

    line: str
    direction: Direction
    truth: int
    counted: int
    matched: int
    missed: int
    extra: int
    ambiguous_counted: int


@dataclass
class MatchResult:
    """The pairing of counted crossings with truth crossings."""

    truth: list[TruthCrossing]
    counted: list[CountedCrossing]
    matched: list[tuple[TruthCrossing, CountedCrossing]] = field(default_factory=list)
    missed: list[TruthCrossing] = field(default_factory=list)
    extra: list[CountedCrossing] = field(default_factory=list)
    ambiguous: list[tuple[TruthCrossing, CountedCrossing]] = field(default_factory=list)
    """Counted crossings paired with an ambiguous truth entry (neither matched nor extra)."""

    @property
    def exact(self) -> bool:
        """Every truth crossing matched and nothing extra."""
        return not self.missed and not self.extra

    def rows(self) -> list[LineResult]:
        """One row per line and direction that has a truth entry or a counted crossing."""
        keys = sorted({(t.line, t.direction) for t in self.truth} | {(c.line, c.direction) for c in self.counted})

        def count(items: Iterable[TruthCrossing | CountedCrossing], key: tuple[str, str]) -> int:
            return sum((item.line, item.direction) == key for item in items)

        return [
            LineResult(
                line=key[0],
                direction=key[1],  # type: ignore[arg-type]
                truth=count((t for t in self.truth if not t.ambiguous), key),
                counted=count(self.counted, key),
                matched=count((t for t, _ in self.matched), key),
                missed=count(self.missed, key),
                extra=count(self.extra, key),
                ambiguous_counted=count((c for _, c in self.ambiguous), key),
            )
            for key in keys
        ]


def _pair(
    truth: Sequence[TruthCrossing], counted: Sequence[CountedCrossing], tolerance: Tolerance
) -> list[tuple[int, int]]:
    """Index pairs (truth, counted) of a maximum matching of one line and direction."""
    if not truth or not counted:
        return []
    offsets = np.array([[c.offset_from(t.frame) for c in counted] for t in truth], dtype=float)
    allowed = (offsets >= -tolerance.early_frames) & (offsets <= tolerance.late_frames)
    cost = np.where(allowed, np.abs(offsets), _UNMATCHED_COST * 10)
    _, truth_to_counted, _ = lap.lapjv(cost, extend_cost=True, cost_limit=_UNMATCHED_COST)
    return [(i, int(j)) for i, j in enumerate(truth_to_counted) if j >= 0 and allowed[i, j]]


def match_crossings(
    truth: Sequence[TruthCrossing], counted: Sequence[CountedCrossing], tolerance: Tolerance
) -> MatchResult:
    """Pair counted crossings with truth crossings, per line and direction.

    Unambiguous truth entries are paired first; counted crossings left over are then paired with
    ambiguous entries, and only what is still unpaired is extra.
    """
    result = MatchResult(list(truth), list(counted))
    for key in sorted({(t.line, t.direction) for t in truth} | {(c.line, c.direction) for c in counted}):
        sure = [t for t in truth if (t.line, t.direction) == key and not t.ambiguous]
        maybe = [t for t in truth if (t.line, t.direction) == key and t.ambiguous]
        left = [c for c in counted if (c.line, c.direction) == key]
        pairs = _pair(sure, left, tolerance)
        result.matched += [(sure[i], left[j]) for i, j in pairs]
        result.missed += [t for i, t in enumerate(sure) if i not in {p[0] for p in pairs}]
        left = [c for j, c in enumerate(left) if j not in {p[1] for p in pairs}]
        pairs = _pair(maybe, left, tolerance)
        result.ambiguous += [(maybe[i], left[j]) for i, j in pairs]
        result.extra += [c for j, c in enumerate(left) if j not in {p[1] for p in pairs}]
    return result


def load_truth(path: Path) -> list[TruthCrossing]:
    """Every crossing (and ambiguous crossing) of a ground-truth YAML file.

    Raises:
        ValueError: The file cannot be read as YAML or does not have the ``lines: {name: {crossings: [...]}}`` layout.
    """
    try:
        document = read_yaml(path, "ground-truth file")
    except ConfigError as exc:  # one kind of error for a bad truth file, as its callers expect
        raise ValueError(str(exc)) from None
    lines = document.get("lines") if isinstance(document, dict) else None
    if not isinstance(lines, dict):
        raise ValueError(f"{path}: no 'lines' mapping")
    crossings = []
    for name, line in lines.items():
        for key, ambiguous in (("crossings", False), ("ambiguous", True)):
            for entry in (line or {}).get(key) or []:
                try:
                    direction, frame = entry["direction"], int(entry["frame"])
                except (KeyError, TypeError, ValueError):
                    raise ValueError(f"{path}: lines.{name}.{key}: each entry needs 'frame' and 'direction'") from None
                if direction not in ("in", "out"):
                    raise ValueError(f"{path}: lines.{name}.{key}: direction must be in or out, not {direction!r}")
                crossings.append(TruthCrossing(str(name), direction, frame, ambiguous))
    return crossings


def load_counted(
    events_path: Path,
    frame_step: int = 1,
    source_frames: Sequence[int] | None = None,
    truth_fps: float | None = None,
) -> list[CountedCrossing]:
    """The ``line_crossing`` events of an ``events.jsonl``, in the ground truth's frame numbering.

    ``frame_step`` maps a clip made of every Nth frame of the truth's clip back onto the truth's
    frames; ``source_frames`` (from :func:`resample_clip`) maps frame ``k`` of a resampled clip to
    ``source_frames[k]``. With ``truth_fps`` (the truth clip's frame rate) a crossing also gets the
    frame its anchor was on the line (``crossed_s``): it then stands for the span from there to the
    frame that confirmed it, since the truth's point of the vehicle (its centre, its front bumper)
    crosses the line a little before or after the box's bottom centre.
    """
    counted = []
    for text in events_path.read_text().splitlines():
        record = json.loads(text) if text.strip() else {}
        if record.get("event") == "line_crossing":
            frame = _truth_frame(int(record["frame_index"]), frame_step, source_frames)
            crossed = None
            if truth_fps is not None and record.get("crossed_s") is not None:
                crossed = frame + round((record["crossed_s"] - record["timestamp_s"]) * truth_fps)
            counted.append(CountedCrossing(record["line"], record["direction"], frame, record["track_id"], crossed))
    return counted


def _truth_frame(index: int, frame_step: int, source_frames: Sequence[int] | None) -> int:
    if source_frames is None:
        return index * frame_step
    return source_frames[index]


def format_table(result: MatchResult) -> str:
    """The per line and direction totals as an aligned text table."""
    header = ("line", "direction", "truth", "counted", "matched", "missed", "extra", "ambiguous")
    rows = [
        (r.line, r.direction, r.truth, r.counted, r.matched, r.missed, r.extra, r.ambiguous_counted)
        for r in result.rows()
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)) for row in [header, *rows])


def subsample_clip(source: Path, destination: Path, step: int, crf: int = 16) -> Fraction:
    """Write every ``step``-th frame of ``source`` (frames 0, step, 2*step, ...) as an H.264 clip
    whose frame rate is the source's divided by ``step``, as a camera streaming at that rate would
    deliver it; returns the new frame rate. Frame ``k`` of the copy is frame ``k * step`` of the source.
    """
    rate, _ = _reencode(source, destination, step, lambda index, _: index % step == 0, crf)
    return rate


def resample_clip(source: Path, destination: Path, fps: float, crf: int = 16) -> list[int]:
    """Write ``source`` as a camera streaming at ``fps`` would deliver it: of each ``1 / fps``
    seconds, the first frame, at its own presentation time (so the gaps are uneven when ``fps``
    does not divide the source's rate, as when a camera drops frames). Returns the source frame
    index of each frame written.

    Example:
        >>> [index for index in range(13) if _opens_period(index, 12.5, 10.0)]
        [0, 2, 3, 4, 5, 7, 8, 9, 10, 12]
    """
    _, kept = _reencode(source, destination, 1, lambda index, source_fps: _opens_period(index, source_fps, fps), crf)
    return kept


def _reencode(
    source: Path, destination: Path, step: int, keep: Callable[[int, float], bool], crf: int
) -> tuple[Fraction, list[int]]:
    """Write the frames of ``source`` for which ``keep(index, source_fps)`` holds as H.264 at the
    source's rate divided by ``step``, frame ``index`` at tick ``index // step``; returns that rate
    and the indices written."""
    import av  # only the clip writers need it

    kept = []
    with av.open(str(source)) as reader, av.open(str(destination), "w") as writer:
        video = reader.streams.video[0]
        rate = Fraction(video.average_rate) / step
        stream = writer.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for index, frame in enumerate(reader.decode(video)):
            if keep(index, float(video.average_rate)):
                image = frame.reformat(format="yuv420p")
                image.pts, image.time_base = index // step, 1 / rate
                writer.mux(stream.encode(image))
                kept.append(index)
        writer.mux(stream.encode(None))
    return rate, kept


def still_clip(snapshots: Sequence[Path], destination: Path, fps: int, seconds_each: int, crf: int = 23) -> int:
    """Write each snapshot held for ``seconds_each`` seconds at ``fps`` as one H.264 clip (a still
    camera's picture changing once per snapshot, with a codec's noise); returns its frame count.
    The snapshots must share one size."""
    import av  # only the clip writers need it
    import cv2

    frames_each = fps * seconds_each
    with av.open(str(destination), "w") as writer:
        stream = writer.add_stream("libx264", rate=fps)
        stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf), "preset": "veryfast"}
        for number, snapshot in enumerate(snapshots):
            image = cv2.imread(str(snapshot))
            if image is None:
                raise ConfigError(f"{snapshot}: not an image")
            if number == 0:
                stream.width, stream.height = image.shape[1], image.shape[0]
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            for index in range(number * frames_each, (number + 1) * frames_each):
                frame.pts = index
                writer.mux(stream.encode(frame))
        writer.mux(stream.encode(None))
    return len(snapshots) * frames_each


def _opens_period(index: int, source_fps: float, fps: float) -> bool:
    """Whether source frame ``index`` is the first one in its ``1 / fps`` period."""
    return index == 0 or math.floor(index * fps / source_fps + 1e-9) > math.floor((index - 1) * fps / source_fps + 1e-9)
