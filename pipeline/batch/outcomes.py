"""Where each video stands, read from the manifest, and the summary files written from that.

A whole video's state is its item's last record; a split video's is that of its slices
(``failed`` when one failed, ``completed`` when all completed, ``truncated`` when all are done and
one was truncated, else ``pending``). A done (completed or truncated) video keeps its summary. A
split video gets a merged ``summary.json`` (and ``intervals.csv``, with lines or movements) in its
folder once every slice has finished.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.analytics.intervals import COLUMNS, merge_rows
from pipeline.batch.manifest import DONE_STATUSES, ItemRecord, Manifest
from pipeline.batch.slicing import SliceSpec
from pipeline.batch.storage import InputFile, OutputFolder, video_folder
from pipeline.batch.summaries import VideoOutcome, batch_csv, batch_json, merge_slices
from pipeline.io.outputs.sinks import csv_text
from pipeline.run.summary import RunSummary

SUMMARY_CSV = "batch_summary.csv"
SUMMARY_JSON = "batch_summary.json"


def item_id(video: str, part: SliceSpec | None) -> str:
    """The manifest id of a whole video (its relative path) or of one of its slices."""
    return video if part is None else f"{video}#{part.name}"


def summary_of(record: ItemRecord | None) -> RunSummary | None:
    """The summary an item's record holds (one that ran: completed, truncated or interrupted), if any."""
    return RunSummary.from_json(record.summary) if record is not None and record.summary else None


class Outcomes:
    """Reads videos' states from a manifest and writes the summaries.

    Args:
        manifest: The batch's manifest (records of this run included).
        folder: The batch's output folder.
        fingerprint: The run's settings digest: records made with other settings do not count.
        split: Whether videos are split into slices.
    """

    def __init__(self, manifest: Manifest, folder: OutputFolder, fingerprint: str, split: bool) -> None:
        self._manifest = manifest
        self._folder = folder
        self._fingerprint = fingerprint
        self._split = split

    def _current(self, record_id: str, video: InputFile) -> ItemRecord | None:
        record = self._manifest.items.get(record_id)
        return record if record is not None and record.is_current(video.identity, self._fingerprint) else None

    def _slices(self, video: InputFile) -> list[tuple[SliceSpec, ItemRecord | None]] | None:
        """A split video's slices with their records (None: not finished), or None if it has no plan."""
        plan = self._manifest.plan(video.relative, video.identity, self._fingerprint)
        if plan is None:
            return None
        specs = [SliceSpec.from_record(record) for record in plan.slices]
        return [(spec, self._current(item_id(video.relative, spec), video)) for spec in specs]

    def outcome(self, video: InputFile) -> VideoOutcome:
        """Where one video stands."""
        outcome = VideoOutcome(video.relative, video.url, self._folder.join(video_folder(video.relative)), "pending")
        slices = self._slices(video) if self._split else None
        if slices is None:  # a whole video, or a split one whose probe failed
            record = self._current(video.relative, video)
            if record is not None:
                outcome.status, outcome.error = record.status, record.error
                outcome.summary = summary_of(record) if record.status in DONE_STATUSES else None
            return outcome
        summaries = [summary_of(record) for _, record in slices]
        for (spec, record), summary in zip(slices, summaries, strict=True):
            outcome.parts.append(
                {
                    "part": spec.name,
                    "status": record.status if record else "pending",
                    "start_frame": spec.start_frame,
                    "end_frame": spec.end_frame,
                    "frames": summary.frames if summary else 0,
                    "error": record.error if record else None,
                }
            )
        failed = [part for part in outcome.parts if part["status"] == "failed"]
        if failed:
            outcome.status = "failed"
            outcome.error = "; ".join(f"{part['part']}: {part['error']}" for part in failed)
        elif all(part["status"] in DONE_STATUSES for part in outcome.parts):
            truncated = any(part["status"] == "truncated" for part in outcome.parts)
            outcome.status = "truncated" if truncated else "completed"
            outcome.summary = merge_slices([summary for summary in summaries if summary is not None])
        return outcome

    def write_video_summary(self, video: InputFile, missing_only: bool = False) -> bool:
        """Write a split video's merged ``summary.json`` if every slice has finished.

        Args:
            video: The video.
            missing_only: Only if the file does not exist yet.

        Returns:
            Whether it was written.
        """
        relative = f"{video_folder(video.relative)}/summary.json"
        slices = self._slices(video)
        if slices is None or any(record is None for _, record in slices):
            return False
        if missing_only and self._folder.exists(relative):
            return False
        outcome = self.outcome(video)
        done = [summary_of(record) for _, record in slices if record is not None and record.status in DONE_STATUSES]
        completed = [summary for summary in done if summary is not None]
        summary = {
            "source": video.url,
            "status": outcome.status,
            **({"error": outcome.error} if outcome.error else {}),
            **merge_slices(completed).to_json(),
            "output_dir": outcome.output_dir,
            "parts": outcome.parts,
        }
        if outcome.status in DONE_STATUSES and completed and completed[0].intervals:
            texts = [
                self._folder.read_text(f"{video_folder(video.relative)}/{spec.name}/intervals.csv")
                for spec, _ in slices
            ]
            if all(text is not None for text in texts):  # none without lines or movements
                rows, summary["intervals"] = merge_rows(
                    [csv.DictReader(io.StringIO(text)) for text in texts if text is not None],
                    completed[0].intervals["interval_s"],
                )
                self._folder.write_text(f"{video_folder(video.relative)}/intervals.csv", csv_text(COLUMNS, rows))
        self._folder.write_text(relative, json.dumps(summary, indent=2) + "\n")
        return True

    def write_batch_summaries(self, videos: Iterable[InputFile], header: Mapping[str, Any]) -> list[VideoOutcome]:
        """Write ``batch_summary.csv`` and ``batch_summary.json``; returns every video's outcome."""
        outcomes = [self.outcome(video) for video in videos]
        self._folder.write_text(SUMMARY_CSV, batch_csv(outcomes))
        self._folder.write_text(SUMMARY_JSON, json.dumps(batch_json(outcomes, header), indent=2) + "\n")
        return outcomes
