"""The store and ``vpipe report`` through the real CLI: a real run writes the store, and the report
over it equals what the run's ``events.jsonl`` says, counted here event by event; a folder imported
twice is stored once; ``--overwrite`` replaces the folder's run in the store too; parking occupancy
follows the slot events; XLSX reads back as the CSV; bad input is one line and exit code 2; and
the same against a real PostgreSQL server the tests start (Debian's ``postgresql``).

The expected counts are computed from ``events.jsonl`` alone: an event at ``timestamp_s`` happened at
the run's start (the config's ``source.start_time``, or the clip's ``creation_time``) plus that, and
belongs to the UTC-aligned bin holding that time.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CONFIGS, SAMPLES, run_vpipe, wait_until

STREET_START = "2024-05-07T07:59:50+00:00"
"""The street clip's first frame (20 s long: it straddles 08:00, a bin boundary of every interval tried)."""
LOT_START = "2012-09-11T15:16:58+00:00"
"""The first parking snapshot's time, from its file name."""
HIGHWAY_START = "2019-09-27T11:22:17+00:00"
"""highway.mp4's creation_time."""

Key = tuple[str, str, str, str, str]
"""(interval_start, kind, name, direction, class_name)."""


def epoch_s(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_events(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def counted(event: dict[str, Any]) -> tuple[str, str, str] | None:
    """(kind, name, direction) of a line crossing or a movement; None for other events."""
    if event["event"] == "line_crossing":
        return ("line", event["line"], event["direction"])
    if event["event"] == "movement":
        return ("movement", event["movement"], "")
    return None


def happened(event: dict[str, Any]) -> float:
    """When the event counts: a crossing when its anchor crossed the line (or a pedestrian walked half a
    crosswalk), a movement when the vehicle entered the intersection; each is known some frames before
    the event (its ``timestamp_s``)."""
    own = {"line_crossing": "crossed_s", "crosswalk_crossing": "crossed_s", "movement": "entered_s"}.get(event["event"])
    return event[own] if own is not None else event["timestamp_s"]


def expected_counts(
    events: list[dict[str, Any]], start: str, interval_s: int, span: tuple[str, str] | None = None
) -> Counter[Key]:
    """Counts per bin, kind, name, direction and class (and ``all``), from the events alone."""
    counts: Counter[Key] = Counter()
    low, high = (epoch_s(span[0]), epoch_s(span[1])) if span else (-math.inf, math.inf)
    for event in events:
        key = counted(event)
        moment = epoch_s(start) + happened(event)
        if key is None or not low <= moment < high:
            continue
        bin_start = iso(math.floor(moment / interval_s) * interval_s)
        counts[(bin_start, *key, event["class_name"])] += 1
        counts[(bin_start, *key, "all")] += 1
    return counts


def report(*args: str | Path) -> list[dict[str, str]]:
    result = run_vpipe("report", *args)
    assert result.returncode == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def nonzero(rows: list[dict[str, Any]]) -> Counter[Key]:
    keys = ("interval_start", "kind", "name", "direction", "class_name")
    return Counter({tuple(str(row[k]) for k in keys): int(row["count"]) for row in rows if int(row["count"])})


def totals(counts: Counter[Key]) -> Counter[tuple[str, str, str, str]]:
    """Counts summed over the bins."""
    summed: Counter[tuple[str, str, str, str]] = Counter()
    for (_, *key), count in counts.items():
        summed[tuple(key)] += count
    return summed


def write_config(path: Path, base: Path, **sections: Any) -> Path:
    settings = yaml.safe_load(base.read_text())
    for name, values in sections.items():
        settings[name] = {**settings.get(name, {}), **values}
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture(scope="module")
def street_run(tmp_path_factory: pytest.TempPathFactory, street: Path) -> Path:
    """The street clip with two lines and two approaches, counted into the folder's own store."""
    out = tmp_path_factory.mktemp("street")
    config = write_config(out / "config.yaml", CONFIGS / "street_movements.yaml", source={"start_time": STREET_START})
    result = run_vpipe("run", street, "--config", config, "--output", out, "--no-video", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""  # --quiet: the store adds nothing to say
    assert (out / "vpipe.sqlite").is_file()
    return out


@pytest.mark.parametrize("interval, interval_s", [("1s", 1), ("5s", 5), ("1m", 60), ("15m", 900)])
def test_the_report_of_a_run_equals_its_events_per_bin_line_direction_and_class(
    street_run: Path, interval: str, interval_s: int
):
    events = read_events(street_run)
    expected = expected_counts(events, STREET_START, interval_s)
    assert sum(1 for e in events if e["event"] == "line_crossing") >= 10  # the clip has crossings to count
    assert any(e["event"] == "movement" for e in events)
    rows = report(street_run, "--interval", interval)
    assert nonzero(rows) == expected
    # Every bin the run covers has a row per line direction, zero or not (1 s bins: some have no event at all).
    last_s = float(list(csv.DictReader((street_run / "counts.csv").open()))[-1]["timestamp_s"])
    first_bin = math.floor(epoch_s(STREET_START) / interval_s)
    last_bin = math.floor((epoch_s(STREET_START) + last_s) / interval_s)
    bins = {iso(b * interval_s) for b in range(first_bin, last_bin + 1)}
    for line in ("westbound", "eastbound"):
        for direction in ("in", "out"):
            found = {
                row["interval_start"]
                for row in rows
                if (row["kind"], row["name"], row["direction"], row["class_name"]) == ("line", line, direction, "all")
            }
            assert found == bins


def test_a_span_counts_the_events_inside_it_only(street_run: Path):
    span = ("2024-05-07T08:00:00+00:00", "2024-05-07T08:00:06+00:00")
    expected = expected_counts(read_events(street_run), STREET_START, 1, span)
    rows = report(street_run, "--from", "2024-05-07T08:00:00", "--to", "2024-05-07T10:00:06+02:00", "--interval", "1s")
    assert nonzero(rows) == expected
    assert {row["interval_start"] for row in rows} == {f"2024-05-07T08:00:0{s}Z" for s in range(6)}
    assert sum(expected.values()) > 0


def test_the_json_report_has_the_csv_rows(street_run: Path):
    result = run_vpipe("report", street_run, "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert nonzero(rows) == expected_counts(read_events(street_run), STREET_START, 900)


def test_the_xlsx_report_reads_back_as_the_csv(street_run: Path, tmp_path: Path):
    from openpyxl import load_workbook

    workbook_path = tmp_path / "counts.xlsx"
    result = run_vpipe("report", street_run, "--interval", "5s", "--output", workbook_path)
    assert result.returncode == 0, result.stderr
    sheet = load_workbook(workbook_path).active
    header, *cells = [[cell for cell in row] for row in sheet.iter_rows(values_only=True)]
    assert header == ["camera", "interval_start", "interval_end", "kind", "name", "direction", "class_name", "count"]
    rows = [dict(zip(header, row, strict=True)) for row in cells]
    assert all(isinstance(row["count"], int) for row in rows)  # numbers, not text
    assert [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows] == report(
        street_run, "--interval", "5s"
    )


def test_a_folder_imported_twice_is_stored_once(street_run: Path, tmp_path: Path):
    store = tmp_path / "imported.sqlite"
    for _ in range(2):
        result = run_vpipe("import", street_run, "--store", store)
        assert result.returncode == 0, result.stderr
    events = read_events(street_run)
    with sqlite3.connect(store) as db:
        stored = db.execute("SELECT event, track_id, timestamp_s FROM events ORDER BY seq").fetchall()
    assert stored == [(e["event"], e.get("track_id"), e.get("timestamp_s")) for e in events]
    # Its records carry no time, so the imported run is placed elsewhere in time: its totals are the events'.
    assert totals(nonzero(report(store, "--interval", "1h"))) == totals(expected_counts(events, STREET_START, 3600))


def test_importing_a_folder_into_the_store_it_was_written_to_as_it_ran_adds_nothing(street_run: Path):
    result = run_vpipe("import", street_run)  # its own vpipe.sqlite, which holds its run already
    assert result.returncode == 0, result.stderr
    assert "already in" in result.stdout
    assert nonzero(report(street_run)) == expected_counts(read_events(street_run), STREET_START, 900)


def test_overwrite_replaces_the_folders_run_in_the_store_too(highway: Path, tmp_path: Path):
    out = tmp_path / "highway"
    for frames in ("200", "120"):  # the second run counts fewer crossings than the first
        result = run_vpipe(
            "run",
            highway,
            "--config",
            CONFIGS / "traffic.yaml",
            "--output",
            out,
            "--no-video",
            "--quiet",
            "--max-frames",
            frames,
            "--overwrite",
        )
        assert result.returncode == 0, result.stderr
    expected = expected_counts(read_events(out), HIGHWAY_START, 900)
    assert sum(expected.values()) > 0
    assert nonzero(report(out)) == expected


def test_parking_occupancy_per_bin_follows_the_slot_events(tmp_path: Path):
    out = tmp_path / "lot"
    slots_file = CONFIGS / "slots" / "pklot_pucpr.yaml"
    config = write_config(
        tmp_path / "parking.yaml",
        CONFIGS / "parking.yaml",
        parking={"slots_file": str(slots_file)},
        source={"start_time": LOT_START},
    )
    result = run_vpipe("run", SAMPLES / "pklot_pucpr", "--config", config, "--output", out, "--no-video", "--quiet")
    assert result.returncode == 0, result.stderr
    slots = len(yaml.safe_load(slots_file.read_text()))
    changes = [
        (epoch_s(LOT_START) + e["timestamp_s"], e["slot"], e["event"] == "slot_occupied")
        for e in read_events(out)
        if e["event"] in ("slot_occupied", "slot_free")
    ]
    assert len(changes) > slots  # bays fill and empty over the snapshots
    last_s = epoch_s(LOT_START) + float(list(csv.DictReader((out / "counts.csv").open()))[-1]["timestamp_s"])
    interval_s, expected = 6 * 3600, []
    for bin_index in range(math.floor(epoch_s(LOT_START) / interval_s), math.floor(last_s / interval_s) + 1):
        bin_start, bin_end = bin_index * interval_s, (bin_index + 1) * interval_s
        at_end = occupied_before(changes, min(bin_end, last_s + 0.001))
        moments = {moment for moment, _, _ in changes if bin_start <= moment < bin_end}
        peak = max(len(occupied_before(changes, m)) for m in {bin_start} | {m + 0.001 for m in moments})
        expected.append([iso(bin_start), iso(bin_end), slots, len(at_end), slots - len(at_end), peak])
    columns = ["interval_start", "interval_end", "slots", "occupied", "free", "max_occupied"]
    rows = report(out, "--parking", "--interval", "6h")
    assert [[row[c] if c.startswith("interval") else int(row[c]) for c in columns] for row in rows] == expected
    # From the middle on: the bays occupied then carry over, the peaks before are not the span's.
    rows = report(out, "--parking", "--interval", "6h", "--from", "2012-09-12T12:00:00Z")
    later = [row for row in expected if row[0] >= "2012-09-12T12:00:00Z"]
    assert [[row[c] if c.startswith("interval") else int(row[c]) for c in columns] for row in rows] == later
    assert {row["camera"] for row in rows} == {"pklot_pucpr"}  # the source's name


def occupied_before(changes: list[tuple[float, str, bool]], moment: float) -> set[str]:
    """The bays occupied just before ``moment``: each bay's last change before then (free if none)."""
    state: dict[str, bool] = {}
    for when, slot, occupied in sorted(changes, key=lambda change: change[0]):
        if when < moment:
            state[slot] = occupied
    return {slot for slot, occupied in state.items() if occupied}


@pytest.mark.parametrize(
    "args, message",
    [
        (["report", "{tmp}/missing.sqlite"], "no store at"),
        (["report", "{tmp}/not_a_store.sqlite"], "not a database"),
        (["report", "{tmp}/empty.sqlite"], "is not a vpipe store"),
        (["report", "{tmp}/empty.sqlite", "--from", "2024-05-08", "--to", "2024-05-07"], "--from must be before --to"),
        (["report", "{tmp}/empty.sqlite", "--from", "yesterday"], "expected an ISO 8601 date or time"),
        (["report", "{tmp}/empty.sqlite", "--interval", "soon"], "expected a duration"),
        (["report", "{tmp}/empty.sqlite", "--interval", "0.5s"], "a whole number of seconds"),
        (["report", "{tmp}/empty.sqlite", "--format", "xlsx"], "needs --output"),
        (["import", "{tmp}"], "is not a run folder"),
    ],
)
def test_bad_report_input_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], message: str):
    (tmp_path / "not_a_store.sqlite").write_text("counts, but not a database\n" * 100)
    sqlite3.connect(tmp_path / "empty.sqlite").close()
    result = run_vpipe(*(arg.format(tmp=tmp_path) for arg in args))
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_store_that_cannot_be_opened_stops_the_run_before_it_writes(highway: Path, tmp_path: Path):
    out = tmp_path / "out"
    closed_port = "postgresql://vpipe:s3cret@127.0.0.1:9/counts"  # discard: nothing listens
    result = run_vpipe("run", highway, "--output", out, "--store", closed_port, "--no-video", "--max-frames", "5")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot open the store postgresql://" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert not out.exists()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback (a password login), as the user ``postgres`` when
    the tests run as root (the server refuses to run as root); its URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("the store tests need PostgreSQL's server: apt-get install postgresql (make test installs it)")
    bindir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="vpipe-postgres-"))
    as_server = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_server:
        shutil.chown(root, "postgres")
    (root / "password").write_text("s3cret\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data, options = root / "data", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    initdb = [bindir / "initdb", "-D", data, "-U", "vpipe", "-A", "scram-sha-256", f"--pwfile={root / 'password'}"]
    subprocess.run([*as_server, *initdb, "--no-sync"], check=True, capture_output=True, timeout=120)
    start = [bindir / "pg_ctl", "-D", data, "-o", options, "-l", root / "log", "-w", "start"]
    subprocess.run([*as_server, *start], check=True, capture_output=True, timeout=60)
    try:
        yield f"postgresql://vpipe:s3cret@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_server, bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_a_run_into_postgresql_reports_its_events_and_an_import_twice_stores_them_once(
    postgres: str, highway: Path, tmp_path: Path
):
    import psycopg

    out = tmp_path / "highway"
    result = run_vpipe("run", highway, "--config", CONFIGS / "traffic.yaml", "--output", out, "--store", postgres)
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert not (out / "vpipe.sqlite").exists()  # the store is the server
    events = read_events(out)
    expected = expected_counts(events, HIGHWAY_START, 5)
    assert sum(expected.values()) > 0
    assert nonzero(report(postgres, "--interval", "5s", "--camera", "highway")) == expected
    assert nonzero(report(postgres, "--interval", "5s")) == expected  # one camera so far
    result = run_vpipe("import", out, "--store", postgres)  # stored as it ran: nothing added
    assert result.returncode == 0 and "already in postgresql://vpipe:***@" in result.stdout, result.stderr
    copy = shutil.copytree(out, tmp_path / "copy")  # another folder: another run, imported twice
    for _ in range(2):
        result = run_vpipe("import", copy, "--store", postgres, "--camera", "highway_again", "--quiet")
        assert result.returncode == 0, result.stderr
    with psycopg.connect(postgres) as db:
        stored = db.execute("SELECT COUNT(*) FROM events WHERE camera = 'highway_again'").fetchone()
    assert stored == (len(events),)
    again = report(postgres, "--camera", "highway_again", "--interval", "1h")
    assert totals(nonzero(again)) == totals(expected_counts(events, HIGHWAY_START, 3600))


def test_a_store_on_a_disk_that_fills_mid_run_fails_the_run_and_keeps_every_batch_it_committed(
    tmp_path: Path, street: Path
):
    from tests.test_faults import one_line_error
    from tests.test_faults_live import Vpipe, summary_of
    from tests.test_faults_outputs import fill, small_disk

    out = tmp_path / "out"
    with small_disk(tmp_path / "disk") as disk:
        store = disk / "vpipe.sqlite"
        vpipe = Vpipe(
            street, "--config", CONFIGS / "street.yaml", "--output", out, "--store", store, "--no-video", "-q"
        )
        try:

            def committed() -> int:
                if not store.exists():
                    return 0
                with closing(sqlite3.connect(store)) as db:  # WAL: read beside the writer
                    tables = db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'events'").fetchone()[0]
                    return tables and db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

            wait_until(committed, timeout=300)
            fill(disk)
            vpipe.process.wait(timeout=300)
            vpipe.stop()
        finally:
            vpipe.kill()
        result = subprocess.CompletedProcess(vpipe.process.args, vpipe.process.returncode, "", "".join(vpipe.stderr))
        line = one_line_error(result, f"cannot use the store {store}: No space left on device")
        summary = summary_of(out)
        assert (summary["status"], summary["error"]) == ("failed", line.removeprefix("vpipe: error: "))
        (disk / "filler").unlink()
        with closing(sqlite3.connect(store)) as db:
            stored = db.execute("SELECT seq, record FROM events ORDER BY seq").fetchall()
    events = read_events(out)
    assert 0 < len(stored) < len(events), "stopped mid-run, with what it had committed"
    assert [(seq, json.loads(record)) for seq, record in stored] == list(enumerate(events[: len(stored)], start=1))


def test_an_event_on_a_runs_last_frame_is_inside_the_runs_span(tmp_path: Path):
    # The frame is at 2.17345 s (2173 ms after the run's start, rounded); its record says 2.1735 s,
    # as events.jsonl writes it (4 decimals), which is 2174 ms: the run must reach that far.
    from pipeline.store.queries import Span, counts, open_for_reading
    from pipeline.store.sink import StoreSink

    target = str(tmp_path / "store.sqlite")
    sink = StoreSink(target, "cam", "clip.mp4", str(tmp_path), start_epoch_s=1_000_000.0)
    record = {"event": "line_crossing", "frame_index": 7, "timestamp_s": 2.1735, "line": "main", "direction": "in",
              "track_id": 1, "class_name": "car", "seq": 1}  # fmt: skip
    sink.write([record], 2.17345)
    sink.end("completed")
    with closing(open_for_reading(target)) as db:
        rows = counts(db, Span(None, None, 60_000))
    assert [(row["name"], row["direction"], row["class_name"], row["count"]) for row in rows] == [
        ("main", "in", "all", 1),
        ("main", "in", "car", 1),
    ]


class LockedFor:
    """A connection whose file another process holds for the first ``busy`` statements: SQLite
    answers those at once with "database is locked" (the busy timeout does not cover the switch to
    WAL); it records every statement."""

    def __init__(self, busy: int, error: str = "database is locked") -> None:
        self.busy, self.error, self.statements = busy, error, []

    def execute(self, sql: str) -> None:
        self.statements.append(sql)
        if len(self.statements) <= self.busy:
            raise sqlite3.OperationalError(self.error)


def test_the_switch_to_wal_waits_for_another_process_opening_the_same_new_store():
    # Two worker processes opening a new store together: one's switch is refused while the other's runs.
    from pipeline.store.sqlite import _switch_to_wal

    connection = LockedFor(busy=3)
    _switch_to_wal(connection, timeout_s=5.0)  # type: ignore[arg-type]
    assert connection.statements == ["PRAGMA journal_mode=WAL"] * 4
    with pytest.raises(sqlite3.OperationalError, match="locked"):  # held for longer than the timeout
        _switch_to_wal(LockedFor(busy=10**6), timeout_s=0.2)  # type: ignore[arg-type]
    other = LockedFor(busy=1, error="disk I/O error")  # any other error is not waited out
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _switch_to_wal(other, timeout_s=5.0)  # type: ignore[arg-type]
    assert len(other.statements) == 1
