"""End-to-end speed of this checkout against another one (an older commit), run alternately.

Each repetition runs ``python -m pipeline run CLIP --config CONFIG`` once from each checkout, one
after the other, with all outputs; the first round is a warm-up (exports, caches) and not counted.
Prints each run's ``processing_fps`` (from its ``summary.json``), the medians, their ratio and the
median of the per-round ratios, which drift in the machine's speed between rounds moves less.

Usage::

    git worktree add /tmp/base c6059fe
    python scripts/ab_speed.py /tmp/base --runs 7
    python scripts/ab_speed.py /tmp/base --clip sample_videos/street_topdown.mp4 --config configs/street.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def processing_fps(tree: Path, clip: Path, config: Path, out: Path) -> float:
    """One run from checkout ``tree`` (its own ``pipeline`` package comes first on the path)."""
    command = [sys.executable, "-m", "pipeline", "run", str(clip), "--config", str(config)]
    command += ["--output", str(out), "--quiet"]
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    subprocess.run(command, cwd=tree, env=env, check=True)
    return float(json.loads((out / "summary.json").read_text())["processing_fps"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path, help="checkout of the commit to compare with")
    parser.add_argument("--clip", type=Path, default=REPO / "sample_videos" / "highway.mp4")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "traffic.yaml")
    parser.add_argument("--runs", type=int, default=7, help="counted rounds (default 7)")
    args = parser.parse_args()
    if not (args.baseline / "pipeline").is_dir():
        print(f"error: {args.baseline}: not a checkout of this project (no pipeline/)", file=sys.stderr)
        return 2
    trees = {"ours": REPO, "baseline": args.baseline.resolve()}
    fps: dict[str, list[float]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as work:
        for round_index in range(args.runs + 1):
            for name, tree in trees.items():
                out = Path(work) / f"{name}_{round_index}"
                value = processing_fps(tree, args.clip.resolve(), args.config.resolve(), out)
                if round_index:  # round 0 warms up
                    fps[name].append(value)
                    print(f"round {round_index} {name}: {value:.1f} FPS", flush=True)
    ours, baseline = fps["ours"], fps["baseline"]
    print(f"median FPS: ours {statistics.median(ours):.1f}, baseline {statistics.median(baseline):.1f}")
    print(f"ours/baseline: {statistics.median(ours) / statistics.median(baseline):.3f} (ratio of medians), ", end="")
    print(f"{statistics.median(o / b for o, b in zip(ours, baseline, strict=True)):.3f} (median of round ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
