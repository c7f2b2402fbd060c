"""Check a run's line crossings one by one against a ground-truth file.

Prints, per line and direction: truth, counted, matched, missed, extra (and counts that paired with
an ``ambiguous`` truth entry, which are neither). Exit code 0 when nothing is missed or extra, 1
otherwise, 2 for bad input.

Usage::

    python scripts/eval_counts.py tests/data/highway_ground_truth.yaml runs/highway
    python scripts/eval_counts.py truth.yaml runs/cam1/events.jsonl --frame-step 3 --list

The ground-truth format is that of ``tests/data/*_ground_truth.yaml``: per line, a list of
``{frame, direction}`` crossings (frame: the clip's frame index when the anchor reaches the line).
``--frame-step N`` is for a run on every Nth frame of the clip the truth was made on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.evaluation import (  # noqa: E402
    Tolerance,
    format_table,
    load_counted,
    load_truth,
    match_crossings,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("truth", type=Path, help="ground-truth YAML")
    parser.add_argument("run", type=Path, nargs="?", default=None, help="events.jsonl or a run folder holding one")
    parser.add_argument("--frame-step", type=int, default=1, help="the run saw every Nth frame of the truth's clip")
    parser.add_argument(
        "--fps",
        type=float,
        default=None,
        help="the truth clip's frame rate (default: from the run's summary.json, or 30)",
    )
    parser.add_argument("--list", action="store_true", help="also list each miss and extra")
    args = parser.parse_args(argv)
    if args.run is None:
        parser.error("give the run folder or its events.jsonl")
    events = args.run / "events.jsonl" if args.run.is_dir() else args.run
    if args.frame_step < 1:
        print("error: --frame-step must be >= 1", file=sys.stderr)
        return 2
    try:
        truth = load_truth(args.truth)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fps = args.fps
    summary = events.parent / "summary.json"
    if fps is None and summary.exists():  # the run's rate, times the step: the truth clip's
        fps = float(json.loads(summary.read_text()).get("fps", 30.0)) * args.frame_step
    fps = fps or 30.0
    try:
        counted = load_counted(events, args.frame_step, truth_fps=fps)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tolerance = Tolerance.for_crossing_times(fps, args.frame_step)
    result = match_crossings(truth, counted, tolerance)
    print(format_table(result))
    print(f"(a count matches a truth crossing {tolerance.early_frames} frames before to {tolerance.late_frames} after)")
    if args.list:
        for item in result.missed:
            print(f"missed: {item.line} {item.direction} frame {item.frame}")
        for item in result.extra:
            print(f"extra:  {item.line} {item.direction} frame {item.frame} track {item.track_id}")
    return 0 if result.exact else 1


if __name__ == "__main__":
    sys.exit(main())
