"""Loading a run folder into a store (``vpipe import``): a run that had no store, a batch's merged
video folder, or a store made again; and a whole ``vpipe batch`` output folder, for a report of it.
Loading a folder twice stores each record once.

The run is the one its ``summary.json`` names: its ``run_id`` if it has one, else an id made from the
folder's path (the same each time). Its time 0 is the summary's ``start_utc``, else when its first
record was written (``time_utc``) less that record's ``timestamp_s``; a folder with neither is placed
so that its video time ends when ``summary.json`` was last written (a live run's end; for a file,
when it was counted).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.config.fields import parse_time
from pipeline.errors import SourceError
from pipeline.io.outputs.run_outputs import segment_path
from pipeline.store.writes import Batch, RunInfo, StoreWriter, record_time_ms


def read_records(folder: Path) -> list[dict[str, Any]]:
    """Every record of the folder's ``events.jsonl`` and its later segments, in order. A line cut
    short by a killed run (the last of a file) is left out."""
    records = []
    for index in range(10**6):
        path = segment_path(folder / "events.jsonl", index)
        if not path.is_file():
            break
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def _interval_rows(folder: Path) -> Iterator[dict[str, str]]:
    path = folder / "intervals.csv"
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as file:
            yield from csv.DictReader(file)


def folder_run_id(folder: Path) -> str:
    """The id of a run whose folder names none: from the folder's absolute path."""
    return "folder-" + hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]


def _origin_ms(summary: Mapping[str, Any], records: list[dict[str, Any]], summary_path: Path) -> int:
    """Unix time of the run's time 0 (milliseconds): the summary's ``start_utc``, else that of the
    first record that says when it was written, else the summary's last write less the video's length."""
    stated = summary.get("start_utc")
    if isinstance(stated, str) and (epoch_s := parse_time(stated.replace("Z", "+00:00"))) is not None:
        return round(epoch_s * 1000)
    for record in records:
        if "time_utc" in record and isinstance(record.get("timestamp_s"), int | float):
            return record_time_ms({"time_utc": record["time_utc"]}, 0) - round(record["timestamp_s"] * 1000)
    return round((summary_path.stat().st_mtime - float(summary.get("duration_s") or 0.0)) * 1000)


def import_folder(writer: StoreWriter, folder: Path, camera: str | None = None) -> int | str:
    """Store the run in ``folder``; returns how many of its events it holds, or, where the store
    holds a run of the folder already (it was stored as it ran, or imported before), that run's id, and
    stores nothing. Events are stored under their own ``seq`` where they have one.

    Args:
        writer: The store.
        folder: A run folder (with ``summary.json``).
        camera: The camera's name; None: the summary's ``camera`` if it has one, else the folder's name.

    Raises:
        SourceError: ``folder`` is not a run folder.
        OutputError: The store cannot be written.
    """
    summary_path = folder / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        reason = "no summary.json" if isinstance(exc, FileNotFoundError) else f"summary.json unreadable: {exc}"
        raise SourceError(f"{folder} is not a run folder ({reason})") from None
    run_id = summary.get("run_id") or folder_run_id(folder)
    stored = writer.db.execute("SELECT run_id FROM runs WHERE output_dir = ?", (str(folder.resolve()),))
    if stored:
        return str(stored[0][0])
    records = read_records(folder)
    origin_ms = _origin_ms(summary, records, summary_path)
    slots = (summary.get("parking") or {}).get("slots")
    run = RunInfo(
        camera or summary.get("camera") or folder.resolve().name,
        run_id,
        str(summary.get("source", "")),
        str(folder.resolve()),
        origin_ms,
        len(slots) if slots is not None else None,
    )
    # A batch slice's timestamps are its video's: it ends at its end_s, not its duration.
    last_ms = origin_ms + round(float(summary.get("end_s") or summary.get("duration_s") or 0.0) * 1000)
    writer.begin(run, last_ms, str(summary.get("status", "completed")))
    events = [(int(record.get("seq", index)), record) for index, record in enumerate(records, start=1)]
    batch = Batch(origin_ms, last_ms, events=events, intervals=list(_interval_rows(folder)))
    writer.write(run, batch)
    return len(records)


BATCH_SUMMARY = "batch_summary.json"


def is_batch_folder(folder: Path) -> bool:
    """Whether ``folder`` is a ``vpipe batch`` output folder (it has ``batch_summary.json``)."""
    return (folder / BATCH_SUMMARY).is_file()


def import_batch(writer: StoreWriter, folder: Path) -> int:
    """Store every completed (or truncated) video of the batch in ``folder``, each slice of a split
    video as a run of its own, all under one camera: the batch folder's name (a batch is taken as one
    camera's recordings). Returns how many events were stored.

    Raises:
        SourceError: ``batch_summary.json`` cannot be read.
    """
    try:
        batch = json.loads((folder / BATCH_SUMMARY).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceError(f"{folder / BATCH_SUMMARY} unreadable: {exc}") from None
    from pipeline.batch.storage import video_folder

    stored = 0
    for video in batch.get("videos", []):
        if video.get("status") not in ("completed", "truncated"):
            continue
        video_dir = folder / video_folder(video["video"])
        runs = [video_dir / part["part"] for part in video.get("parts") or []] or [video_dir]
        for run_dir in runs:
            result = import_folder(writer, run_dir, folder.resolve().name)
            stored += result if isinstance(result, int) else 0
    return stored
