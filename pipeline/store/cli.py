"""``vpipe report``: counts and parking occupancy per interval from a store, as CSV, XLSX or JSON;
``vpipe import``: run folders into a store."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.config.fields import parse_time
from pipeline.durations import parse_duration
from pipeline.errors import ConfigError, OutputError
from pipeline.store import STORE_FILE
from pipeline.store.database import Database, is_postgres
from pipeline.store.workbook import write_workbook

REPORT_EPILOG = """\
examples:
  vpipe report runs/highway                                   # the run folder's vpipe.sqlite, 15-minute bins
  vpipe report store.sqlite --from 2024-05-07 --to 2024-05-08 --interval 1h --camera gate -o day.xlsx
  vpipe report postgresql://vpipe@db/vpipe --parking --format json
  vpipe report runs/crossing --tmc --config crossing.yaml -o crossing_tmc.xlsx   # + crossing_tmc.png
  vpipe report runs/archive --tmc -o archive_tmc.csv                          # a vpipe batch output folder

times are ISO 8601 (2024-05-07, 2024-05-07T06:30, 2024-05-07T06:30+02:00), UTC unless they have an offset;
bins are aligned to UTC. See docs/store.md."""

FORMATS = ("csv", "xlsx", "json")


def time_arg(text: str) -> int:
    """An ISO 8601 date or time as Unix milliseconds."""
    epoch_s = parse_time(text.replace("Z", "+00:00"))
    if epoch_s is None:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 date or time such as 2024-05-07T06:30, got {text!r}")
    return round(epoch_s * 1000)


def interval_arg(text: str) -> int:
    """A bin length of whole seconds (5m, 15m, 1h, ...) in milliseconds."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds < 1 or seconds.denominator != 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds, at least 1s, such as 15m, got {text!r}")
    return int(seconds) * 1000


def _store_arg(text: str) -> str:
    """A store: a SQLite file, a run folder holding one, a ``vpipe batch`` output folder (kept as it
    is: its runs are imported for the report) or a ``postgresql://`` URL."""
    from pipeline.store.folders import is_batch_folder

    if is_postgres(text) or not Path(text).is_dir():
        return text
    folder = Path(text)
    return text if is_batch_folder(folder) and not (folder / STORE_FILE).is_file() else str(folder / STORE_FILE)


def add_parsers(commands: Any) -> None:
    """Add ``report`` and ``import`` to vpipe's subcommands."""
    report = commands.add_parser(
        "report",
        help="counts per line, movement and class, or parking occupancy, per interval from a store",
        description="Counts per line and direction, movement and class, or each lot's parking occupancy, "
        "per interval over a span of time, across runs and restarts, from a store written by vpipe run.",
        epilog=REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "store",
        type=_store_arg,
        metavar="STORE",
        help="SQLite file, run folder, vpipe batch folder or postgresql:// URL",
    )
    report.add_argument("--from", dest="start", type=time_arg, metavar="TIME", help="start (default: the first run)")
    report.add_argument("--to", dest="end", type=time_arg, metavar="TIME", help="end, excluded (default: the last)")
    report.add_argument(
        "--interval", type=interval_arg, default=interval_arg("15m"), metavar="DURATION", help="bin length (15m)"
    )
    report.add_argument("--camera", action="append", metavar="NAME", help="only this camera (repeatable)")
    report.add_argument("--parking", action="store_true", help="parking occupancy and free bays per lot instead")
    report.add_argument(
        "--tmc",
        action="store_true",
        help="turning-movement count: approach x turn x class group per bin, pedestrians, peak hour, diagram PNG",
    )
    report.add_argument(
        "--config", "-c", metavar="YAML", help="--tmc: the runs' config (class groups, approaches' layout)"
    )
    report.add_argument("--format", choices=FORMATS, help="csv (default), xlsx or json; default: from --output")
    report.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout; xlsx needs a file)")

    folder_import = commands.add_parser(
        "import",
        help="store run folders (written without a store, or by vpipe batch) for vpipe report",
        description="Store each run folder's events, interval rows and parking states; a folder imported "
        "twice is stored once.",
    )
    folder_import.add_argument("folders", nargs="+", type=Path, metavar="RUN_DIR", help="run folders")
    folder_import.add_argument(
        "--store", metavar="FILE|URL", help=f"SQLite file or postgresql:// URL (default: each folder's {STORE_FILE})"
    )
    folder_import.add_argument("--camera", metavar="NAME", help="the camera's name (default: the folder's name)")
    folder_import.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")


def command_report(args: argparse.Namespace) -> int:
    from pipeline.io.outputs.folders import check_output_file
    from pipeline.store.queries import COUNT_COLUMNS, PARKING_COLUMNS, Span, counts, parking

    if args.start is not None and args.end is not None and args.start >= args.end:
        raise ConfigError("--from must be before --to")
    output = Path(args.output) if args.output else None
    kind = args.format or (output.suffix.lstrip(".").lower() if output and output.suffix[1:] in FORMATS else "csv")
    if kind == "xlsx" and output is None:
        raise ConfigError("--format xlsx needs --output FILE (a workbook is not text for stdout)")
    if args.tmc and (output is None or kind == "json" or args.parking):
        raise ConfigError(
            "--tmc needs --output FILE.csv or FILE.xlsx (it writes tables and a diagram), without --parking"
        )
    if output is not None:
        check_output_file(output)
    span = Span(args.start, args.end, args.interval, tuple(args.camera or ()))
    with _opened(args.store) as db:
        if args.tmc:
            assert output is not None
            _write_tmc(db, span, args.config, output, kind)
            return 0
        rows = parking(db, span) if args.parking else counts(db, span)
    columns = PARKING_COLUMNS if args.parking else COUNT_COLUMNS
    _write_table(kind, columns, rows, output, "parking" if args.parking else "counts")
    return 0


@contextmanager
def _opened(target: str) -> Iterator[Database]:
    """The store at ``target`` opened to read; a batch folder's runs imported into a temporary one first."""
    from pipeline.store.folders import import_batch, is_batch_folder
    from pipeline.store.queries import open_for_reading
    from pipeline.store.writes import StoreWriter

    with tempfile.TemporaryDirectory(prefix="vpipe-report-") as scratch:
        if not is_postgres(target) and is_batch_folder(Path(target)):
            writer = StoreWriter(str(Path(scratch) / STORE_FILE))
            try:
                import_batch(writer, Path(target))
            finally:
                writer.close()
            target = str(Path(scratch) / STORE_FILE)
        db = open_for_reading(target)
        try:
            yield db
        finally:
            db.close()


def _write_tmc(db: Database, span: Any, config_path: str | None, output: Path, kind: str) -> None:
    """The TMC tables and diagram at ``output`` (see :mod:`pipeline.store.tmc_files`)."""
    from pipeline.analytics.class_groups import ClassGroups
    from pipeline.config import load_config
    from pipeline.store.tmc import tmc
    from pipeline.store.tmc_files import leg_directions, write_tmc

    config = load_config(config_path)
    groups = ClassGroups.of_config(config.class_groups)
    approaches = [a.name for a in config.movements.approaches]
    crosswalks = [c.name for c in config.movements.crosswalks]
    result = tmc(db, span, groups, approaches, crosswalks)
    write_tmc(result, output, kind, leg_directions(config))


def _write_table(
    kind: str, columns: Sequence[str], rows: list[dict[str, Any]], output: Path | None, title: str
) -> None:
    """``rows`` as a CSV, JSON or XLSX file (stdout without ``output``)."""
    if kind == "xlsx":
        assert output is not None
        write_workbook({title: (columns, rows)}, output)
        return
    if kind == "json":
        text = json.dumps(rows, indent=1) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None


def command_import(args: argparse.Namespace) -> int:
    from pipeline.store.folders import import_folder
    from pipeline.store.writes import StoreWriter

    for folder in args.folders:
        writer = StoreWriter(args.store or str(folder / STORE_FILE))
        try:
            stored = import_folder(writer, folder, args.camera)
        finally:
            writer.close()
        if args.quiet:
            continue
        if isinstance(stored, str):
            print(f"{folder}: already in {writer.target} (run {stored}, stored as it ran); nothing added")
        else:
            print(f"{folder}: {stored} events in {writer.target}")
    return 0
