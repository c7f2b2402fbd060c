"""Which YOLO11 size runs in real time here? Every available size over one clip, side by side.

Runs ``vpipe run`` (end to end, all outputs) with ``yolo11{n,s,m,l,x}.pt`` (and ``-seg`` for
segment): the ones in ``models/`` always, the others only when Ultralytics can download them
(``YOLO_OFFLINE=0`` and online). Writes a table, ``model_comparison.json`` and
``model_comparison.png`` (FPS against count error, with latency per frame, peak RSS and, on CUDA,
peak GPU memory), and recommends the largest model that keeps up with the clip's frame rate.

Usage::

    python scripts/compare_models.py                                  # highway.mp4, detect, CPU
    YOLO_OFFLINE=0 python scripts/compare_models.py --device cuda     # all sizes, online
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
SIZES = ["n", "s", "m", "l", "x"]


def available(name: str) -> bool:
    """In models/, or downloadable (downloads are off unless YOLO_OFFLINE=0)."""
    return (REPO / "models" / name).exists() or os.environ.get("YOLO_OFFLINE", "1").lower() in ("0", "false")


def run_model(name: str, args: argparse.Namespace) -> dict[str, Any] | None:
    out = args.work / Path(name).stem
    command = [
        sys.executable, "-m", "pipeline", "run", str(args.clip), "--config", str(args.config), "--model", name,
        "--device", args.device, "--output", str(out), "--overwrite", "--quiet",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env={**os.environ})
    if result.returncode != 0:
        print(f"{name}: skipped ({result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'failed'})")
        return None
    return json.loads((out / "summary.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=REPO / "sample_videos" / "highway.mp4")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "traffic.yaml")
    parser.add_argument("--ground-truth", type=Path, default=REPO / "tests" / "data" / "highway_ground_truth.yaml")
    parser.add_argument("--task", choices=["detect", "segment"], default="detect")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "compare_models")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    truth_lines = yaml.safe_load(args.ground_truth.read_text())["lines"]
    truth = sum(line["in"] + line["out"] for line in truth_lines.values())

    rows = []
    for size in SIZES:
        name = f"yolo11{size}{'-seg' if args.task == 'segment' else ''}.pt"
        if not available(name):
            print(f"{name}: not in models/ and downloads are off (YOLO_OFFLINE=0 to fetch it)")
            continue
        summary = run_model(name, args)
        if summary is None:
            continue
        counted = sum(line["in_total"] + line["out_total"] for line in summary["lines"].values())
        rows.append(
            {
                "model": name,
                "fps": summary["processing_fps"],
                "latency_ms": round(1000 / summary["processing_fps"], 1),
                "count": counted,
                "count_error": abs(counted - truth),
                "peak_rss_mb": summary["peak_rss_mb"],
                "peak_gpu_mb": summary.get("peak_gpu_mb"),
                "backend": summary["backend"],
                "source_fps": summary["fps"],
            }
        )
    if not rows:
        print("no model could be run")
        return 1
    source_fps = rows[0]["source_fps"]
    real_time = [row for row in rows if row["fps"] >= source_fps]
    recommendation = real_time[-1]["model"] if real_time else None
    print(f"{'model':<18}{'FPS':>8}{'ms/frame':>10}{'count':>7}{'error':>7}{'RSS MB':>9}{'GPU MB':>9}  backend")
    for row in rows:
        gpu = f"{row['peak_gpu_mb']:.0f}" if row["peak_gpu_mb"] is not None else "-"
        print(
            f"{row['model']:<18}{row['fps']:>8.1f}{row['latency_ms']:>10.1f}{row['count']:>7}{row['count_error']:>7}"
            f"{row['peak_rss_mb']:>9.0f}{gpu:>9}  {row['backend']}"
        )
    print(f"ground truth: {truth} crossings; source runs at {source_fps:.2f} FPS")
    print(
        f"recommended: {recommendation} (the largest that keeps up with the source)"
        if recommendation
        else "none of these keeps up with the source in real time here; use --detect-every or a GPU"
    )
    (args.work / "model_comparison.json").write_text(
        json.dumps(
            {"ground_truth": truth, "source_fps": source_fps, "recommended": recommendation, "models": rows}, indent=2
        )
    )
    plot(rows, source_fps, args.work / "model_comparison.png")
    print(f"written {args.work / 'model_comparison.json'} and model_comparison.png")
    return 0


def plot(rows: list[dict[str, Any]], source_fps: float, path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for row in rows:
        axes.scatter(row["fps"], row["count_error"], s=40 + row["peak_rss_mb"] / 10)
        gpu = f", GPU {row['peak_gpu_mb']:.0f} MB" if row["peak_gpu_mb"] is not None else ""
        axes.annotate(
            f"{row['model']}\n{row['latency_ms']:.0f} ms/frame, RSS {row['peak_rss_mb']:.0f} MB{gpu}",
            (row["fps"], row["count_error"]),
            textcoords="offset points",
            xytext=(6, 6),
            fontsize=8,
        )
    axes.axvline(source_fps, linestyle="--", color="grey", label=f"source {source_fps:.1f} FPS (real time)")
    axes.set_xlabel("end-to-end FPS (higher is better)")
    axes.set_ylabel("count error vs ground truth (lower is better)")
    axes.set_title("YOLO11 sizes: speed against counting accuracy")
    axes.legend(loc="upper right", fontsize="small")
    axes.grid(alpha=0.3)
    figure.savefig(str(path), dpi=100)


if __name__ == "__main__":
    sys.exit(main())
