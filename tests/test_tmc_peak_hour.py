"""The TMC report's peak hour and peak-hour factor on exact synthetic movements in a store: only bins a
run watched whole make a peak hour; a run that starts mid-bin leaves its first bin out. The table says
which bins the runs watched only in part."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pipeline.analytics.class_groups import ClassGroups
from pipeline.store.database import connect
from pipeline.store.queries import Span
from pipeline.store.tmc import tmc
from pipeline.store.tmc_files import write_tmc
from pipeline.store.writes import Batch, RunInfo, StoreWriter

SEVEN_MS = 1_715_065_200_000  # 2024-05-07T07:00:00Z
BIN_MS = 900_000


def _through(seq: int, at_s: float) -> tuple[int, dict[str, Any]]:
    """A car N->S that entered the intersection ``at_s`` after the run's start, confirmed 3 s later."""
    record = {"event": "movement", "timestamp_s": at_s + 3.0, "movement": "N->S", "origin": "N", "destination": "S"}
    return seq, record | {"class_name": "car", "class_group": "cars", "turn": "through", "entered_s": at_s}


def _store(tmp_path: Path, start_ms: int, last_ms: int, per_bin: dict[int, int]) -> str:
    """One run from ``start_ms`` to ``last_ms``; ``per_bin[k]`` cars in the bin starting 07:00 + k x 15 min,
    spread over the part of it the run watched."""
    target = str(tmp_path / "store.sqlite")
    writer = StoreWriter(target)
    run = RunInfo("x", "run-x", "x.mp4", str(tmp_path), start_ms)
    writer.begin(run, start_ms)
    events = []
    for k, cars in per_bin.items():
        low = max(SEVEN_MS + k * BIN_MS, start_ms)
        for car in range(cars):
            at_ms = low + (SEVEN_MS + (k + 1) * BIN_MS - low) * (car + 0.5) / cars
            events.append(_through(len(events) + 1, (at_ms - start_ms) / 1000))
    writer.write(run, Batch(start_ms, last_ms, events=events))
    writer.close()
    return target


def _peak(target: str) -> tuple[str, float | None, dict[str, Any]]:
    db = connect(target, create=False)
    try:
        report = tmc(db, Span(None, None, BIN_MS), ClassGroups.of_config(), ["N", "S"])
        first, _, phf = report.peak_hours()["x"]
        rows = report.peak_rows()
    finally:
        db.close()
    return str(first * BIN_MS - SEVEN_MS), phf, next(row for row in rows if row["approach"] == "all")


def test_a_bin_watched_in_part_is_no_part_of_the_peak_hour(tmp_path: Path):
    # 07:10 to 08:30: 07:00 watched 5 minutes (8 cars), 07:15 .. 08:15 whole: 10, 10, 10, 5, 10.
    # With the partial bin, 07:00-08:00 would be the peak hour (38 cars, PHF 38 / (4 x 10) = 0.95);
    # of whole bins, 07:15-08:15 and 07:30-08:30 have 35 each: the first, PHF 35 / (4 x 10) = 0.875.
    start_ms = SEVEN_MS + 10 * 60_000
    target = _store(tmp_path, start_ms, SEVEN_MS + 6 * BIN_MS, {0: 8, 1: 10, 2: 10, 3: 10, 4: 5, 5: 10})
    offset, phf, row = _peak(target)
    assert (offset, phf) == (str(BIN_MS), 0.875)
    assert (row["peak_hour_start"], row["peak_hour_end"]) == ("2024-05-07T07:15:00Z", "2024-05-07T08:15:00Z")
    assert (row["through"], row["total"], row["phf"]) == (35, 35, 0.875)


def test_a_run_ending_a_frame_short_of_the_hour_still_watched_its_last_bin_whole(tmp_path: Path):
    # 07:00 to 07:59:59.967 (the last frame at 30 fps): four whole bins, 5, 10, 10, 15 cars.
    target = _store(tmp_path, SEVEN_MS, SEVEN_MS + 4 * BIN_MS - 33, {0: 5, 1: 10, 2: 10, 3: 15})
    offset, phf, row = _peak(target)
    assert (offset, phf) == ("0", round(40 / (4 * 15), 3))
    assert row["total"] == 40


def test_the_table_says_how_long_each_bin_was_watched_and_which_only_in_part(tmp_path: Path):
    # Two runs: 07:10 to 07:20 and 07:25 to 08:14:59.967 (the last frame at 30 fps, a frame short of 08:15).
    # 07:00 watched 5 min, 07:15 5 + 5 min (the gap between the runs), 07:30 and 07:45 whole, 08:00 all
    # but 33 ms: whole by the 2 s rule.
    target = str(tmp_path / "store.sqlite")
    writer = StoreWriter(target)
    for name, start_ms, last_ms, cars in [
        ("a", SEVEN_MS + 10 * 60_000, SEVEN_MS + 20 * 60_000, 1),
        ("b", SEVEN_MS + 25 * 60_000, SEVEN_MS + 5 * BIN_MS - 33, 2),
    ]:
        run = RunInfo("x", f"run-{name}", f"{name}.mp4", str(tmp_path / name), start_ms)
        writer.begin(run, start_ms)
        events = [_through(seq + 1, 60.0 * (seq + 1)) for seq in range(cars)]  # a minute, two minutes in
        writer.write(run, Batch(start_ms, last_ms, events=events))
    writer.close()
    db = connect(target, create=False)
    try:
        report = tmc(db, Span(None, None, BIN_MS), ClassGroups.of_config(), ["N", "S"])
    finally:
        db.close()
    expected = [  # a's car at 07:11, b's at 07:26 and 07:27
        ("2024-05-07T07:00:00Z", 300.0, True, 1),
        ("2024-05-07T07:15:00Z", 600.0, True, 2),
        ("2024-05-07T07:30:00Z", 900.0, False, 0),
        ("2024-05-07T07:45:00Z", 900.0, False, 0),
        ("2024-05-07T08:00:00Z", 899.967, False, 0),
    ]
    rows = report.rows()
    assert [(r["interval_start"], r["watched_s"], r["partial"], r["N_through_cars"]) for r in rows] == expected

    written = write_tmc(report, tmp_path / "tmc.csv", "csv", {})
    assert written[0] == tmp_path / "tmc.csv"
    table = list(csv.DictReader((tmp_path / "tmc.csv").open()))
    assert list(table[0])[:5] == ["camera", "interval_start", "interval_end", "watched_s", "partial"]
    assert [(r["watched_s"], r["partial"]) for r in table] == [(str(w), str(p)) for _, w, p, _ in expected]
