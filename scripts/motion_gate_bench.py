"""What ``--motion-gate`` saves: processing FPS and the share of frames detected with and without it.

Two clips: ``sample_videos/highway.mp4`` (moving all the time) and a still lot, two PUCPR snapshots
held 10 s each at 5 fps through H.264 (:func:`pipeline.evaluation.still_clip`), the parking demo's
config. Each repetition runs every clip without and then with the gate (``vpipe run --no-video``);
prints each run's ``processing_fps``, the medians, their ratio and the median of the per-repetition
ratios, which drift in the machine's speed between repetitions moves less.

Usage::

    python scripts/motion_gate_bench.py --repeats 3
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
sys.path.insert(0, str(REPO))

from pipeline.evaluation import still_clip  # noqa: E402

LOT = REPO / "sample_videos" / "pklot_pucpr"
SNAPSHOTS = [LOT / "2012-09-12_10_26_57.jpg", LOT / "2012-09-28_08_01_02.jpg"]


def run(clip: Path, config: Path, out: Path, gated: bool) -> tuple[float, float]:
    """One run: its processing FPS and the share of its frames the detector saw."""
    command = [sys.executable, "-m", "pipeline", "run", str(clip), "--config", str(config), "--output", str(out)]
    command += ["--no-video", "--quiet", "--overwrite", *(["--motion-gate"] if gated else [])]
    subprocess.run(command, cwd=REPO, env={**os.environ, "YOLO_OFFLINE": "1"}, check=True)
    summary = json.loads((out / "summary.json").read_text())
    detected = summary["motion_gate"]["frames_detected"] if gated else summary["frames"]
    return float(summary["processing_fps"]), detected / summary["frames"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="repetitions (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        lot_clip = Path(work) / "still_lot.mp4"
        still_clip(SNAPSHOTS, lot_clip, fps=5, seconds_each=10)
        clips = {
            "highway.mp4": (REPO / "sample_videos" / "highway.mp4", REPO / "configs" / "traffic.yaml"),
            "still lot (2 snapshots x 10 s, 5 fps, 1280x720)": (lot_clip, REPO / "configs" / "parking.yaml"),
        }
        results: dict[tuple[str, bool], list[tuple[float, float]]] = {}
        for repeat in range(args.repeats):
            for name, (clip, config) in clips.items():
                for gated in (False, True):
                    fps, share = run(clip, config, Path(work) / "out", gated)
                    results.setdefault((name, gated), []).append((fps, share))
                    print(f"{repeat + 1} {name} gate={'on' if gated else 'off'}: {fps:.1f} FPS, {share:.0%} detected")
    print("| clip | FPS without | FPS with | with/without (of medians; median of ratios) | frames detected with |")
    print("|---|---|---|---|---|")
    for name in clips:
        plain, gated = results[name, False], results[name, True]
        without, with_ = statistics.median(f for f, _ in plain), statistics.median(f for f, _ in gated)
        ratios = statistics.median(g[0] / p[0] for p, g in zip(plain, gated, strict=True))
        share = statistics.median(s for _, s in gated)
        print(f"| {name} | {without:.1f} | {with_:.1f} | {with_ / without:.2f}; {ratios:.2f} | {share:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
