"""How fast a store answers a one-day report: a synthetic week of one camera's traffic, then
``vpipe report`` over one day in 15-minute bins (issue 24's bar: under 1 s).

The week is written through the store's own writer, as a run writes it: one line with two
directions, four classes, a daily curve from about 20 vehicles per 15 minutes at night to about 400
at the peaks (about 84,000 crossings), and the run's 15-minute interval rows. Timed: the report's
query in this process (median of ``--repeats``), and the whole ``vpipe report`` command (Python's
start included).

    python scripts/bench_store.py                      # a SQLite file in a temporary folder
    python scripts/bench_store.py --store postgresql://vpipe@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.store.queries import Span, counts, open_for_reading  # noqa: E402
from pipeline.store.writes import Batch, RunInfo, StoreWriter  # noqa: E402

WEEK_START_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z
BIN_MS = 15 * 60 * 1000
CLASSES = ("car", "car", "car", "car", "car", "car", "truck", "bus", "motorcycle")


def vehicles_in_bin(bin_index: int) -> int:
    """About 20 at night, 400 at the 8:00 and 17:00 peaks."""
    hour = (bin_index % 96) / 4
    peaks = math.exp(-((hour - 8) ** 2) / 3) + math.exp(-((hour - 17) ** 2) / 4)
    return round(20 + 380 * peaks)


def fill(target: str, days: int, seed: int = 7) -> int:
    """Write ``days`` of one camera's crossings and interval rows; returns the crossings written."""
    rng = random.Random(seed)
    writer = StoreWriter(target)
    run = RunInfo("cam3", "bench-week", "rtsp://cam3/stream", "/srv/vpipe/cam3", WEEK_START_MS)
    writer.begin(run, WEEK_START_MS)
    seq = 0
    for bin_index in range(days * 96):
        bin_start_ms = WEEK_START_MS + bin_index * BIN_MS
        events, per_key = [], {}
        for _ in range(vehicles_in_bin(bin_index)):
            seq += 1
            offset_s = rng.uniform(0, BIN_MS / 1000)
            direction, class_name = rng.choice(("in", "out")), rng.choice(CLASSES)
            record = {"event": "line_crossing", "frame_index": seq, "timestamp_s": round(bin_index * 900 + offset_s, 4)}
            record.update(line="main", direction=direction, track_id=seq, class_name=class_name, speed_kmh=None)
            events.append((seq, record))
            for name in ("all", class_name):
                per_key[direction, name] = per_key.get((direction, name), 0) + 1
        start = f"{(bin_start_ms - WEEK_START_MS) / 1000:.1f}"
        end = f"{(bin_start_ms - WEEK_START_MS + BIN_MS) / 1000:.1f}"
        rows = [
            dict(interval_start=start, interval_end=end, covered_s=900.0, kind="line", name="main", direction=d)
            | {"class_name": c, "count": n}
            for (d, c), n in per_key.items()
        ]
        writer.write(run, Batch(WEEK_START_MS, bin_start_ms + BIN_MS, events=events, intervals=rows))
    writer.close()
    return seq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="a postgresql:// URL (default: a SQLite file in a temporary folder)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with TemporaryDirectory() as folder:
        target = args.store or str(Path(folder) / "vpipe.sqlite")
        started = time.perf_counter()
        crossings = fill(target, args.days)
        print(f"wrote {args.days} days, {crossings} crossings in {time.perf_counter() - started:.1f} s to {target}")
        day = (WEEK_START_MS + 3 * 86_400_000, WEEK_START_MS + 4 * 86_400_000)  # the fourth day
        query_s, rows = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            db = open_for_reading(target)
            rows = counts(db, Span(*day, BIN_MS))
            db.close()
            query_s.append(time.perf_counter() - started)
        command = [sys.executable, "-m", "pipeline", "report", target, "--from", "2024-05-04", "--to", "2024-05-05"]
        command_s = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            subprocess.run(command, cwd=REPO, check=True, capture_output=True)
            command_s.append(time.perf_counter() - started)
        print(
            f"one-day report: {len(rows)} rows, {sum(r['count'] for r in rows if r['class_name'] == 'all')} crossings"
        )
        print(f"query (open, read, bin): median {statistics.median(query_s) * 1000:.0f} ms of {args.repeats}")
        print(f"vpipe report command:    median {statistics.median(command_s) * 1000:.0f} ms of {args.repeats}")


if __name__ == "__main__":
    main()
