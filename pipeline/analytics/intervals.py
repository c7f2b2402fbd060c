"""Interval counts: line crossings and movements per fixed time bin, with the peak hour.

Bins are aligned to wall-clock time when the run knows when its source started (a live feed's
clock, a file's ``creation_time`` or ``source.start_time``): 15-minute bins start at :00, :15, :30
and :45. Without a start time they are aligned to the source's first frame. A bin's ``covered_s`` is
the time the source was delivering frames in it (see :class:`Coverage`). A bin is written once
the video has moved ``lag_s`` past its end (a movement that reached no exit is reported when its
track is forgotten, with the time of its last sighting), so memory holds a few bins at most.

Example:
    >>> from pipeline.analytics.events import LineCrossing
    >>> counter = IntervalCounter(60.0, start_epoch_s=None, keys=[("line", "main", "in")], lag_s=0.0)
    >>> counter.update([LineCrossing(0, 5.0, "main", "in", track_id=1, class_name="car")], 5.0)
    []
    >>> [(r["interval_start"], r["class_name"], r["count"]) for r in counter.update([], 61.0)]
    [('0.0', 'all', 1), ('0.0', 'car', 1)]
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.analytics.events import CrosswalkCrossing, Event, LineCrossing, Movement, TrackEvent, happened_s

Key = tuple[str, str, str]
"""(kind, name, direction): ``("line", "main", "in")``, ``("movement", "West->East", "")`` or
``("crosswalk", "North", "in")`` (``""`` for a crosswalk polygon)."""

COLUMNS = ["interval_start", "interval_end", "covered_s", "kind", "name", "direction", "class_name", "count"]


def key_of(event: TrackEvent) -> Key | None:
    """The interval key an event counts under (None: not counted in intervals)."""
    if isinstance(event, LineCrossing):
        return ("line", event.line, event.direction)
    if isinstance(event, Movement):
        return ("movement", event.movement, "")
    if isinstance(event, CrosswalkCrossing):
        return ("crosswalk", event.crosswalk, event.direction or "")
    return None


OUTAGE_MIN_S = 2.0
"""A gap between frames up to this long is always covered (a stall, a few dropped frames)."""
OUTAGE_FRAMES = 4
"""A gap up to this many normal frame intervals is covered (missed snapshots of a slow camera)."""
OUTAGE_HISTORY = 15
"""How many of the latest gaps measure the normal frame interval (their median)."""
OUTAGE_FIRST_GAP_S = 60.0
"""A run's first gap, with no interval before it to judge it by, is covered up to this long (snapshots
every minute); beyond it, an outage right after the first frame."""


def whole_bin(covered_s: float, interval_s: float) -> bool:
    """Whether a bin of ``interval_s`` was watched whole: all of it but at most :data:`OUTAGE_MIN_S` (the gap
    the outage rule always covers: a run's last frame falls a frame short of the bin's end, a split video's
    slices a frame apart). A run that starts or ends inside a bin leaves it partial. Only whole bins make a
    peak hour (the run's summary, the TMC report): a partial one's short count would make a wrong V15.

    Example:
        >>> whole_bin(898.0, 900.0), whole_bin(600.0, 900.0)
        (True, False)
    """
    return covered_s >= interval_s - OUTAGE_MIN_S


class Coverage:
    """The outage rule: which gaps between consecutive frames count as observed time.

    The time between two consecutive frames is covered unless the gap is an outage: longer than
    ``max(OUTAGE_MIN_S, OUTAGE_FRAMES x the normal frame interval)``, the normal interval being the
    median of the ``OUTAGE_HISTORY`` gaps before this one (a run's first gap has none to go by: it is
    covered up to ``OUTAGE_FIRST_GAP_S``). The interval is measured, not taken from the nominal frame
    rate, which snapshot folders and MJPEG streams do not have: at 60 fps a gap over 2 s is an outage,
    with snapshots every 2 s (0.5 fps) one over 8 s.

    Example:
        >>> coverage = Coverage()
        >>> [coverage.covered_from(t) for t in (0.0, 2.0, 4.0, 10.0, 12.0, 30.0)]  # 10 -> 30: over 4 x 2 s
        [None, 0.0, 2.0, 4.0, 10.0, None]
    """

    def __init__(self) -> None:
        self._gaps: deque[float] = deque(maxlen=OUTAGE_HISTORY)
        self._last_s: float | None = None

    def covered_from(self, timestamp_s: float) -> float | None:
        """The next frame, at ``timestamp_s``: the previous frame's time if the gap since it is
        covered, else None (an outage, or the first frame: nothing before it was seen)."""
        previous, self._last_s = self._last_s, timestamp_s
        if previous is None:
            return None
        gap = timestamp_s - previous
        limit_s = (
            max(OUTAGE_MIN_S, OUTAGE_FRAMES * statistics.median_low(self._gaps)) if self._gaps else OUTAGE_FIRST_GAP_S
        )
        self._gaps.append(gap)
        return previous if gap <= limit_s else None


@dataclass
class _Bin:
    counts: dict[Key, Counter[str]] = field(default_factory=dict)
    covered_s: float = 0.0


@dataclass
class _PeakHour:
    """Sliding sums over the last ``bins_per_hour`` bins of one key: constant memory."""

    bins_per_hour: int
    interval_s: float
    window: deque[tuple[str, int, float]] = field(default_factory=deque)
    """(label, count, covered_s) of the latest bins."""
    best: tuple[bool, bool, int, str, int, int] | None = None
    """(whether it is a full hour of whole bins, whether its bins are whole, volume, label of its first
    bin, largest bin in it, bins in it): a full hour beats any shorter span, whole bins beat partial ones
    (a run with none), the first of equal volumes wins."""

    def add(self, start: str, count: int, covered_s: float) -> None:
        if self.window and self.window[-1][0] == start:  # the bin again, counted by the next run of a restart
            _, before, seen_s = self.window[-1]
            self.window[-1] = (start, before + count, seen_s + covered_s)
        else:
            self.window.append((start, count, covered_s))
        if len(self.window) > self.bins_per_hour:
            self.window.popleft()
        whole = 0  # the latest bins watched whole, in a row
        while whole < len(self.window) and whole_bin(self.window[-1 - whole][2], self.interval_s):
            whole += 1
        span = list(self.window)[-whole:] if whole else list(self.window)  # no whole bin: every bin held
        counts = [c for _, c, _ in span]
        candidate = (whole == self.bins_per_hour, whole > 0, sum(counts))
        if self.best is None or candidate > self.best[:3]:
            self.best = (*candidate, span[0][0], max(counts), len(span))


class PeakHours:
    """The peak hour of each key from its bins' totals, given in time order.

    Args:
        interval_s: Bin length; bins that do not divide an hour give no peak hour.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        hour = 3600.0 / interval_s
        self._bins = round(hour) if interval_s <= 3600 and abs(hour - round(hour)) < 1e-9 else 0
        self._peaks: dict[Key, _PeakHour] = {}
        self._last = ""  # the latest bin's label, and how many bins there were
        self._bins_seen = 0

    def add(self, key: Key, start: str, total: int, covered_s: float) -> None:
        """One bin's total for ``key`` and the time the run watched of it; ``start`` labels the bin (its
        ``interval_start``). The same bin given again (the next run after a restart inside it counts it
        too) adds to its total and its time."""
        if self._bins:
            self._peaks.setdefault(key, _PeakHour(self._bins, self.interval_s)).add(start, total, covered_s)
            self._bins_seen += start != self._last
            self._last = start

    def summary(self) -> dict[str, Any]:
        """The ``intervals`` section of ``summary.json``: the bin length and, per key, the peak hour
        (the 60 minutes of consecutive whole bins, :func:`whole_bin`, with the most events) and its
        peak-hour factor (volume / (bins per hour x the largest bin in it)). Without a whole hour of
        whole bins, the peak is the run's bins watched whole in a row with the most events (every bin
        of the run up to an hour if none is whole), with ``phf`` None and ``phf_reason`` saying why:
        the factor is defined over a full hour, and one over fewer bins is not comparable with it."""
        peaks = {}
        for (kind, name, direction), peak in self._peaks.items():
            if peak.best is None or peak.best[2] == 0:
                continue
            full, _, volume, start, largest, bins = peak.best
            label = f"{kind}:{name}" + (f":{direction}" if direction else "")
            peaks[label] = {"start": start, "volume": volume, "phf": None}
            if full:
                peaks[label]["phf"] = round(volume / (self._bins * largest), 3)
            elif self._bins_seen < self._bins:
                peaks[label]["phf_reason"] = f"the run is shorter than an hour ({bins} of {self._bins} bins)"
            else:
                peaks[label]["phf_reason"] = f"the run watched no hour of whole bins ({bins} of {self._bins} bins)"
        return {"interval_s": self.interval_s, "peak_hour": peaks}


def merge_rows(parts: Iterable[Iterable[Mapping[str, str]]], interval_s: float) -> tuple[list[dict[str, Any]], dict]:
    """One ``intervals.csv`` from those of consecutive pieces of one video (a batch's slices).

    A bin two pieces share (a slice boundary inside it) gets the sum of their counts and of their
    ``covered_s``. Returns the rows, in time order, and the ``intervals`` section of the summary.

    Example:
        >>> row = dict(kind="line", name="main", direction="in", class_name="all")
        >>> a = [{**row, "interval_start": "0.0", "interval_end": "60.0", "covered_s": "40.0", "count": "2"}]
        >>> b = [{**row, "interval_start": "0.0", "interval_end": "60.0", "covered_s": "20.0", "count": "1"},
        ...      {**row, "interval_start": "60.0", "interval_end": "120.0", "covered_s": "5.0", "count": "0"}]
        >>> rows, _ = merge_rows([a, b], 60.0)
        >>> [(r["interval_start"], r["covered_s"], r["count"]) for r in rows]
        [('0.0', 60.0, 3), ('60.0', 5.0, 0)]
    """
    bins: dict[str, dict[tuple[str, str, str, str], dict[str, Any]]] = {}
    covered: dict[str, float] = {}  # per bin: what each piece saw of it (every row of a piece's bin says the same)
    for part in parts:
        seen: dict[str, float] = {}
        for row in part:
            key = (row["kind"], row["name"], row["direction"], row["class_name"])
            merged = bins.setdefault(row["interval_start"], {}).setdefault(key, {**row, "count": 0})
            merged["count"] += int(row["count"])
            seen[row["interval_start"]] = float(row["covered_s"])
        for start, seconds in seen.items():
            covered[start] = covered.get(start, 0.0) + seconds
    rows, peaks = [], PeakHours(interval_s)
    for start, content in bins.items():
        for (kind, name, direction, class_name), merged in content.items():
            rows.append({**{column: merged[column] for column in COLUMNS}, "covered_s": round(covered[start], 3)})
            if class_name == "all":
                peaks.add((kind, name, direction), start, merged["count"], covered[start])
    return rows, peaks.summary()


class IntervalCounter:
    """Counts events per bin of ``interval_s`` and key, per class and in all.

    Args:
        interval_s: Bin length in seconds.
        start_epoch_s: Unix time of the source's first frame (timestamp 0); None aligns the bins
            to the first frame and labels them in seconds from it.
        keys: Keys that get a row in every bin, zero or not (every line direction and movement);
            other keys (e.g. ``A->?``) get rows in the bins they occur in.
        lag_s: How long after a bin's end its rows are held back for late events.
    """

    def __init__(self, interval_s: float, start_epoch_s: float | None, keys: Sequence[Key], lag_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self.start_epoch_s = start_epoch_s
        self.keys: dict[Key, None] = dict.fromkeys(keys)
        self.lag_s = lag_s
        self._bins: dict[int, _Bin] = {}
        self._next_bin: int | None = None
        self._coverage = Coverage()
        self._peaks = PeakHours(interval_s)

    def _bin_of(self, timestamp_s: float) -> int:
        return math.floor(((self.start_epoch_s or 0.0) + timestamp_s) / self.interval_s + 1e-9)

    def _cover(self, from_s: float, to_s: float) -> None:
        """Add the covered time from ``from_s`` to ``to_s`` to the bins it spans, split at their edges."""
        assert self._next_bin is not None
        index = self._bin_of(from_s)
        while from_s < to_s:
            end_s = (index + 1) * self.interval_s - (self.start_epoch_s or 0.0)
            if index >= self._next_bin:  # a bin already written keeps what it had (only rounding reaches it)
                self._bins.setdefault(index, _Bin()).covered_s += min(to_s, end_s) - from_s
            from_s, index = end_s, index + 1

    def _label(self, bin_index: int) -> str:
        start = bin_index * self.interval_s
        if self.start_epoch_s is None:
            return str(round(start, 3))
        return datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z")

    def update(self, events: Iterable[Event], timestamp_s: float) -> list[dict[str, Any]]:
        """Count one frame's events at video time ``timestamp_s``; returns the rows of bins now closed."""
        current = self._bin_of(timestamp_s)
        if self._next_bin is None:
            self._next_bin = current
        covered_from = self._coverage.covered_from(timestamp_s)
        if covered_from is not None:
            self._cover(covered_from, timestamp_s)
        for event in events:
            key = key_of(event) if isinstance(event, TrackEvent) else None
            if key is None:
                continue
            self.keys.setdefault(key, None)
            when_s = happened_s(event)  # crossed, or entered the intersection: not the (later) confirmation
            index = max(self._bin_of(event.timestamp_s if when_s is None else when_s), self._next_bin)
            counts = self._bins.setdefault(index, _Bin()).counts
            counts.setdefault(key, Counter())[event.class_name] += 1
        self._bins.setdefault(current, _Bin())  # a bin with a frame gets rows, even if nothing of it is covered
        closed = self._bin_of(timestamp_s - self.lag_s)
        rows: list[dict[str, Any]] = []
        while self._next_bin < closed:
            rows += self._close(self._next_bin)
        return rows

    def finish(self) -> list[dict[str, Any]]:
        """Rows of every bin still open (the end of the run)."""
        rows: list[dict[str, Any]] = []
        last = max(self._bins, default=self._next_bin)
        while self._next_bin is not None and last is not None and self._next_bin <= last:
            rows += self._close(self._next_bin)
        return rows

    def _close(self, index: int) -> list[dict[str, Any]]:
        assert self._next_bin is not None
        self._next_bin = index + 1
        content = self._bins.pop(index, _Bin())
        start, end = self._label(index), self._label(index + 1)
        covered_s = round(content.covered_s, 3)
        rows = []
        for key in self.keys:
            classes = content.counts.get(key, Counter())
            total = sum(classes.values())
            self._peaks.add(key, start, total, covered_s)
            base = {"interval_start": start, "interval_end": end, "covered_s": covered_s}
            kind, name, direction = key
            base.update(kind=kind, name=name, direction=direction)
            rows.append({**base, "class_name": "all", "count": total})
            rows += [{**base, "class_name": c, "count": n} for c, n in sorted(classes.items())]
        return rows

    def carry(self, rows: Iterable[Mapping[str, str]]) -> None:
        """Take in the rows an earlier run wrote to ``intervals.csv``: their bins' totals (``class_name``
        ``all``) enter the peak hours, as if this counter had closed them."""
        for row in rows:
            if row["class_name"] == "all":
                key = (row["kind"], row["name"], row["direction"])
                self._peaks.add(key, row["interval_start"], int(row["count"]), float(row["covered_s"]))

    def summary(self) -> dict[str, Any]:
        """The ``intervals`` section of ``summary.json`` (see :meth:`PeakHours.summary`)."""
        return self._peaks.summary()
