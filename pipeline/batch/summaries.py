"""Merging summaries: slices into a video, videos into ``batch_summary.csv`` / ``batch_summary.json``.

Counts add up exactly (per line, direction, class and lane); zone statistics are combined
(``max_count`` the largest, ``mean_count`` weighted by frames, dwell times weighted by exits);
so do movements and pedestrians per crosswalk.
Speeds stay in each item's own ``summary.json``.

Example:
    >>> a = {"main": {"in": {"car": 2}, "out": {}, "in_total": 2, "out_total": 0}}
    >>> b = {"main": {"in": {"car": 1, "bus": 1}, "out": {"car": 1}, "in_total": 2, "out_total": 1}}
    >>> merge_lines([a, b])["main"]
    {'in': {'bus': 1, 'car': 3}, 'out': {'car': 1}, 'in_total': 4, 'out_total': 1}
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.analytics import Counts
from pipeline.analytics.movements import movement_count
from pipeline.batch.manifest import DONE_STATUSES
from pipeline.run.summary import RunSummary


def merge_lines(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Add up ``lines`` sections: counts per direction and class (and class group where the parts have
    them), totals, lanes."""
    merged: dict[str, Any] = {}
    for lines in parts:
        for name, line in lines.items():
            entry = merged.setdefault(name, {"in": Counter(), "out": Counter(), "lanes": {}, "groups": {}})
            for direction in ("in", "out"):
                entry[direction].update(line.get(direction, {}))
                if f"{direction}_by_group" in line:
                    entry["groups"].setdefault(direction, Counter()).update(line[f"{direction}_by_group"])
            for lane, counts in line.get("lanes", {}).items():
                entry["lanes"].setdefault(lane, Counter()).update(counts)
    result = {}
    for name, entry in merged.items():
        result[name] = {
            "in": dict(sorted(entry["in"].items())),
            "out": dict(sorted(entry["out"].items())),
            "in_total": sum(entry["in"].values()),
            "out_total": sum(entry["out"].values()),
        }
        for direction, groups in entry["groups"].items():
            result[name][f"{direction}_by_group"] = dict(groups)
        if entry["lanes"]:
            result[name]["lanes"] = {lane: {"in": c["in"], "out": c["out"]} for lane, c in entry["lanes"].items()}
    return result


def merge_zones(parts: Sequence[tuple[Mapping[str, Any], int]]) -> dict[str, Any]:
    """Combine ``zones`` sections given with each part's frame count, in time order."""
    merged: dict[str, Any] = {}
    for zones, frames in parts:
        for name, zone in zones.items():
            entry = merged.setdefault(name, {"max_count": 0, "count_sum": 0.0, "frames": 0, "enters": 0, "exits": 0})
            entry["max_count"] = max(entry["max_count"], zone["max_count"])
            entry["count_sum"] += zone["mean_count"] * frames
            entry["frames"] += frames
            entry["enters"] += zone["enters"]
            entry["dwell_sum"] = entry.get("dwell_sum", 0.0) + zone["mean_dwell_s"] * zone["exits"]
            entry["exits"] += zone["exits"]
            entry["max_dwell_s"] = max(entry.get("max_dwell_s", 0.0), zone["max_dwell_s"])
            entry["inside_at_end"] = zone.get("inside_at_end", {})
    return {
        name: {
            "max_count": entry["max_count"],
            "mean_count": round(entry["count_sum"] / entry["frames"], 3) if entry["frames"] else 0.0,
            "enters": entry["enters"],
            "exits": entry["exits"],
            "mean_dwell_s": round(entry["dwell_sum"] / entry["exits"], 3) if entry["exits"] else 0.0,
            "max_dwell_s": round(entry["max_dwell_s"], 3),
            "inside_at_end": entry["inside_at_end"],
        }
        for name, entry in merged.items()
    }


def merge_movements(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Add up the ``counts`` of ``movements`` sections (a movement is counted by the slice it ends in),
    per class and, where the parts have them, per class group, with each movement's turn."""
    merged: dict[str, Counter[str]] = {}
    groups: dict[str, Counter[str]] = {}
    turns: dict[str, str] = {}
    for movements in parts:
        for name, entry in movements.get("counts", {}).items():
            merged.setdefault(name, Counter()).update(entry.get("by_class", {}))
            if "by_group" in entry:
                groups.setdefault(name, Counter()).update(entry["by_group"])
            if "turn" in entry:
                turns[name] = entry["turn"]
    counts = {name: movement_count(classes) for name, classes in merged.items()}
    for name, by_group in groups.items():
        counts[name]["by_group"] = {group: n for group, n in by_group.items() if n}
    for name, turn in turns.items():
        counts[name]["turn"] = turn
    return {"counts": counts}


def merge_crosswalks(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Add up ``crosswalks`` sections: each crosswalk's ``total`` (and ``in``/``out`` for a line).

    Example:
        >>> first = {"N": {"total": 2, "in": 2, "out": 0}, "S": {"total": 1}}
        >>> merge_crosswalks([first, {"N": {"total": 1, "in": 0, "out": 1}}])
        {'N': {'total': 3, 'in': 2, 'out': 1}, 'S': {'total': 1}}
    """
    merged: dict[str, Counter[str]] = {}
    for crosswalks in parts:
        for name, entry in crosswalks.items():
            merged.setdefault(name, Counter()).update(entry)
    return {name: dict(counts) for name, counts in merged.items()}


@dataclass
class MergedSlices:
    """A split video's slices added up (see :func:`merge_slices`).

    Attributes:
        frames: Frames counted over all slices.
        duration_s: Their video time.
        processing_fps: Frames over the slices' summed processing time.
        counts: Lines, zones, movements and crosswalks merged (speeds stay in the slices' summaries).
        first: The first slice's summary: the video's rate, size and model; None without slices.
        motion_gate: The slices' frames detected and skipped as unchanged, added up (with ``model.motion_gate``).
    """

    frames: int
    duration_s: float
    processing_fps: float
    counts: Counts
    first: RunSummary | None
    motion_gate: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        """The merged fields of the video's ``summary.json``, in its order."""
        data: dict[str, Any] = {"frames": self.frames}
        if self.first is not None:
            first, model = self.first, self.first.model
            data.update(fps=first.fps, width=first.width, height=first.height, model=model.weights, task=model.task)
            data.update(device=model.device, imgsz=model.imgsz, backend=model.backend, input_size=model.input_size)
            data.update(detect_every=first.detect_every)
        if self.motion_gate is not None:
            data["motion_gate"] = self.motion_gate
        data.update(duration_s=self.duration_s, processing_fps=self.processing_fps, **self.counts.to_json())
        return data


def merge_slices(summaries: Sequence[RunSummary]) -> MergedSlices:
    """A whole video's totals from its slices' summaries (in time order, all done).

    ``processing_fps`` is frames over the slices' summed processing time (warm-ups included), the
    rate one worker would have had.
    """
    frames = sum(s.frames for s in summaries)
    busy_s = sum(s.frames / s.processing_fps for s in summaries if s.processing_fps)
    movements = [s.counts.movements for s in summaries if s.counts.movements is not None]
    crosswalks = [s.counts.crosswalks for s in summaries if s.counts.crosswalks is not None]
    counts = Counts(
        merge_lines([s.counts.lines for s in summaries]),
        merge_zones([(s.counts.zones, s.frames) for s in summaries]),
        movements=merge_movements(movements) if movements else None,
        crosswalks=merge_crosswalks(crosswalks) if crosswalks else None,
    )
    gated = [s.motion_gate for s in summaries if s.motion_gate is not None]
    return MergedSlices(
        frames,
        round(sum(s.duration_s for s in summaries), 4),
        round(frames / busy_s, 2) if busy_s else 0.0,
        counts,
        summaries[0] if summaries else None,
        {key: sum(gate[key] for gate in gated) for key in gated[0]} if gated else None,
    )


@dataclass
class VideoOutcome:
    """Where one input video stands after a batch.

    Attributes:
        video: Relative path.
        input: Local path or URL.
        output_dir: Its output folder.
        status: ``completed``, ``truncated`` (the file ends before the frames it announces; counted
            to its end), ``failed`` (the video or one of its slices failed) or ``pending``.
        error: Why it failed (with the slice's name when a slice failed).
        summary: Its summary when completed or truncated: ``vpipe run``'s, or the slices merged.
        parts: For a split video, one entry per slice: name, status, frames, error.
    """

    video: str
    input: str
    output_dir: str
    status: str
    error: str | None = None
    summary: RunSummary | MergedSlices | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        summary = self.summary
        counts = summary.counts if summary is not None else Counts({}, {})
        return {
            "video": self.video,
            "input": self.input,
            "output_dir": self.output_dir,
            "status": self.status,
            "error": self.error,
            "frames": summary.frames if summary is not None else 0,
            "duration_s": summary.duration_s if summary is not None else 0.0,
            "processing_fps": summary.processing_fps if summary is not None else 0.0,
            "parts": self.parts,
            "lines": counts.lines,
            "zones": counts.zones,
        }


def batch_csv(outcomes: Sequence[VideoOutcome]) -> str:
    """``batch_summary.csv``: one row per video, with counts per line, direction and class.

    Columns: ``video, status, frames, duration_s, processing_fps, slices, output_dir, error``, then
    per line ``<line>_in, <line>_out`` and ``<line>_<direction>_<class>`` for every class seen.
    """
    lines: dict[str, set[str]] = {}
    for outcome in outcomes:
        for name, line in (outcome.summary.counts.lines if outcome.summary is not None else {}).items():
            lines.setdefault(name, set()).update(line["in"], line["out"])
    count_columns = [f"{name}_{d}" for name in lines for d in ("in", "out")]
    count_columns += [
        f"{name}_{d}_{cls}" for name, classes in lines.items() for d in ("in", "out") for cls in sorted(classes)
    ]
    base = ["video", "status", "frames", "duration_s", "processing_fps", "slices", "output_dir", "error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=base + count_columns, lineterminator="\n")
    writer.writeheader()
    for outcome in outcomes:
        record = outcome.to_record()
        row: dict[str, Any] = {key: record.get(key) for key in base}
        row["slices"], row["error"] = len(outcome.parts), outcome.error or ""
        for name, classes in lines.items():
            line = record["lines"].get(name)
            for direction in ("in", "out"):
                row[f"{name}_{direction}"] = line[f"{direction}_total"] if line else ""
                for cls in sorted(classes):
                    row[f"{name}_{direction}_{cls}"] = line[direction].get(cls, 0) if line else ""
        writer.writerow(row)
    return buffer.getvalue()


def batch_json(outcomes: Sequence[VideoOutcome], header: Mapping[str, Any]) -> dict[str, Any]:
    """``batch_summary.json``: the run's settings, totals over done (completed or truncated) videos,
    and every video."""
    done = [o.summary for o in outcomes if o.status in DONE_STATUSES and o.summary is not None]
    statuses = Counter(o.status for o in outcomes)
    return {
        **header,
        "videos_total": len(outcomes),
        "completed": statuses["completed"],
        "truncated": statuses["truncated"],
        "failed": statuses["failed"],
        "pending": statuses["pending"],
        "frames": sum(summary.frames for summary in done),
        "lines": merge_lines([summary.counts.lines for summary in done]),
        "videos": [o.to_record() for o in outcomes],
    }
