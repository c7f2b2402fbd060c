"""End-to-end speed of vpipe against Ultralytics' own counting loop and the model's own limit.

For every clip and task, five measurements, each in its own process, alternated for several
repetitions (median and min-max reported):

1. baseline: Ultralytics ``solutions.ObjectCounter`` with ``tracker="bytetrack.yaml"``, reading with
   OpenCV and writing the annotated video with OpenCV, as its docs show;
2. limit: decode (PyAV) + inference alone with our fastest backend at our input size, one frame
   after the other (predict-only, the model compiled for one frame's latency);
3. limit pipelined: the same, but with the model as ours runs it (OpenVINO compiled for throughput,
   ``Detector.in_flight`` frames in flight, so decoding and NMS overlap inference): what ours would
   do if tracking, counting, drawing and writing cost nothing;
4. ours: ``vpipe run`` end to end with all outputs;
5. ours without video: the same with ``--no-video`` (no drawing, no H.264 encoding), which shows
   what the annotated video costs.

ours/limit is given twice: as the ratio of the two medians, and as the median of the ratios within
each repetition (the two ran a few seconds apart), which drift in the machine's speed between
repetitions moves less. ``benchmark.json`` also keeps every run's FPS.

Same clip, same weights, same imgsz and classes. Limit and ours run the same export: with
``--precision auto`` (the default) that is int8 OpenVINO on a CPU with VNNI/AMX, quantized from the
same ``.pt``; ``--precision fp32`` measures the fp32 export instead. Counts of ours and of the baseline are compared
with the hand-counted ground truth in ``tests/data`` (totals over lines and directions, since
ObjectCounter has one region and its own in/out convention).

Usage::

    python scripts/benchmark.py                       # all clips, detect and segment, 3 repetitions
    python scripts/benchmark.py --clips highway --tasks detect --repeats 5 --device cuda
    python scripts/benchmark.py --clips highway --tasks detect --precision fp32
    python scripts/benchmark.py --clips street_320x240 --tasks detect --inference-threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "false")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VEHICLES = ["car", "motorcycle", "bus", "truck"]


@dataclass(frozen=True)
class Clip:
    video: Path
    config: Path
    ground_truth: str | None
    """Name of tests/data/<name>_ground_truth.yaml, if the clip was counted by hand."""
    baseline_line: tuple[tuple[float, float], tuple[float, float]] | None
    """The single line ObjectCounter counts on (it has one region)."""


@dataclass(frozen=True)
class Setup:
    """What every measurement of one table row shares."""

    task: str
    imgsz: int
    device: str
    precision: str
    """For limit and ours (the baseline runs Ultralytics' own default)."""
    inference_threads: int
    """For limit pipelined and ours; 0: auto, as ``vpipe run``."""

    def flags(self) -> list[str]:
        return [
            "--task", self.task, "--imgsz", str(self.imgsz), "--device", self.device, "--precision", self.precision,
            "--inference-threads", str(self.inference_threads),
        ]  # fmt: skip


def clips(work: Path) -> dict[str, Clip]:
    """The sample clips, plus a 320x240 version of the street clip made on the fly."""
    samples, configs = REPO / "sample_videos", REPO / "configs"
    small_video, small_config = _small_street_clip(work)
    return {
        "highway": Clip(samples / "highway.mp4", configs / "traffic.yaml", "highway", ((150, 330), (830, 330))),
        "street": Clip(
            samples / "street_topdown.mp4", configs / "street.yaml", "street_topdown", ((320, 0), (320, 340))
        ),
        "street_320x240": Clip(small_video, small_config, "street_topdown", ((160, 0), (160, 226.7))),
        "lot": Clip(samples / "lot_topdown.mp4", configs / "parking_drive_through.yaml", None, None),
    }


def _small_street_clip(work: Path) -> tuple[Path, Path]:
    """street_topdown.mp4 resized to 320x240, with its config's lines scaled to match."""
    import av
    import cv2
    import yaml

    video, config = work / "street_320x240.mp4", work / "street_320x240.yaml"
    if not video.exists():
        from pipeline.io.outputs.sinks import H264VideoSink
        from pipeline.io.sources.files import open_source

        source = open_source(str(REPO / "sample_videos" / "street_topdown.mp4"))
        # Encoded as before x264's defaults here changed, so the clip (and its counts) stay the same.
        with H264VideoSink(video, 320, 240, source.fps, crf=18, preset="veryfast", lookahead=None) as sink:
            for frame in source:
                sink.write(cv2.resize(frame.image, (320, 240), interpolation=cv2.INTER_AREA))
        av.open(str(video)).close()
    data = yaml.safe_load((REPO / "configs" / "street.yaml").read_text())
    sx, sy = 320 / 640, 240 / 360
    for line in data["lines"]:
        line["start"] = [line["start"][0] * sx, line["start"][1] * sy]
        line["end"] = [line["end"][0] * sx, line["end"][1] * sy]
    config.write_text(yaml.safe_dump(data))
    return video, config


def weights_for(task: str) -> Path:
    """The same .pt weights for all three measurements (ours exports them to its backend)."""
    return REPO / "models" / ("yolo11n.pt" if task == "detect" else "yolo11n-seg.pt")


def ground_truth_total(name: str | None) -> int | None:
    if name is None:
        return None
    import yaml

    lines = yaml.safe_load((REPO / "tests" / "data" / f"{name}_ground_truth.yaml").read_text())["lines"]
    return sum(line["in"] + line["out"] for line in lines.values())


# --- workers: each runs in its own process and prints one JSON line -------------------------------


def worker_baseline(clip: Clip, setup: Setup, out: Path) -> dict[str, Any]:
    import cv2
    from ultralytics import solutions

    capture = cv2.VideoCapture(str(clip.video))
    width, height, fps = int(capture.get(3)), int(capture.get(4)), capture.get(5)
    writer = cv2.VideoWriter(str(out / "baseline.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    counter = solutions.ObjectCounter(
        show=False,
        region=list(clip.baseline_line) if clip.baseline_line else [(0, 0), (width, 0), (width, height), (0, height)],
        model=str(weights_for(setup.task)),
        tracker="bytetrack.yaml",
        classes=[2, 3, 5, 7],
        imgsz=setup.imgsz,
        device=setup.device,
        verbose=False,
    )
    frames = 0
    started = time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        writer.write(counter(frame).plot_im)
        frames += 1
    elapsed = time.perf_counter() - started
    writer.release()
    return {"fps": frames / elapsed, "frames": frames, "count": counter.in_count + counter.out_count}


def worker_limit(clip: Clip, setup: Setup, out: Path, pipelined: bool = False) -> dict[str, Any]:
    from collections import deque

    from pipeline.config import ModelConfig
    from pipeline.io.sources.files import open_source
    from pipeline.models import Detector
    from pipeline.runtime import set_torch_threads

    source = open_source(str(clip.video))
    detector = Detector(
        ModelConfig(
            weights=str(weights_for(setup.task)),
            imgsz=setup.imgsz,
            classes=VEHICLES,
            device=setup.device,
            precision=setup.precision,
            inference_threads=setup.inference_threads,
        ),
        frame_size=(source.width, source.height),
        pipelined=pipelined,
    )
    set_torch_threads(detector.backend)
    in_flight: deque[Any] = deque()
    frames = 0
    started = time.perf_counter()
    for frame in source:
        in_flight.append(detector.start([frame.image]))
        if len(in_flight) >= detector.in_flight:
            in_flight.popleft()()
        frames += 1
    while in_flight:
        in_flight.popleft()()
    return {
        "fps": frames / (time.perf_counter() - started),
        "frames": frames,
        "backend": detector.backend,
        "precision": detector.precision,
    }


def worker_limit_pipelined(clip: Clip, setup: Setup, out: Path) -> dict[str, Any]:
    return worker_limit(clip, setup, out, pipelined=True)


def run_ours(clip: Clip, setup: Setup, out: Path, video: bool = True) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "pipeline", "run", str(clip.video), "--config", str(clip.config),
        "--model", str(weights_for(setup.task)), "--task", setup.task, "--imgsz", str(setup.imgsz),
        "--device", setup.device, "--precision", setup.precision, "--output", str(out / "ours"), "--overwrite",
        "--quiet",
    ]  # fmt: skip
    if setup.inference_threads:
        command += ["--inference-threads", str(setup.inference_threads)]
    if not video:
        command.append("--no-video")
    subprocess.run(command, cwd=REPO, check=True)
    summary = json.loads((out / "ours" / "summary.json").read_text())
    count = sum(line["in_total"] + line["out_total"] for line in summary["lines"].values())
    return {
        "fps": summary["processing_fps"],
        "frames": summary["frames"],
        "count": count,
        "peak_rss_mb": summary["peak_rss_mb"],
        "backend": summary["backend"],
        "precision": summary["precision"],
        "input_size": summary["input_size"],
        "inference_threads": summary.get("inference_threads"),
    }


WORKERS = {"baseline": worker_baseline, "limit": worker_limit, "limit_pipelined": worker_limit_pipelined}


def measure(kind: str, clip_name: str, setup: Setup, work: Path) -> dict[str, Any]:
    """One measurement in a fresh process."""
    clip = clips(work)[clip_name]
    with tempfile.TemporaryDirectory(dir=work) as out:
        if kind in ("ours", "ours_no_video"):
            return run_ours(clip, setup, Path(out), video=kind == "ours")
        command = [
            sys.executable, __file__, "--worker", kind, "--clips", clip_name, "--work", str(work), "--worker-out", out,
            *setup.flags(),
        ]  # fmt: skip
        result = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
        return json.loads(result.stdout.strip().splitlines()[-1])


def summarize(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2), "max": round(max(values), 2)}


def paired_ratios(runs: dict[str, list[dict[str, Any]]], kind: str, reference: str) -> dict[str, float]:
    """``kind``'s FPS over ``reference``'s within each repetition (they ran back to back), summarized:
    less sensitive than a ratio of medians to the machine drifting between repetitions."""
    return summarize([a["fps"] / b["fps"] for a, b in zip(runs[kind], runs[reference], strict=True)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", default="highway,street_320x240,street,lot", help="comma-separated clip names")
    parser.add_argument("--tasks", default="detect,segment", help="detect, segment or both")
    parser.add_argument("--task", help=argparse.SUPPRESS)  # a worker's one task
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"], help="for limit and ours")
    parser.add_argument(
        "--inference-threads",
        type=int,
        default=0,
        help="OpenVINO threads for limit pipelined and ours (0: auto, as vpipe run)",
    )
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "benchmark")
    parser.add_argument("--output", type=Path, default=None, help="benchmark.json (default: in --work)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    if args.worker:  # inside a measurement process
        clip = clips(args.work)[args.clips]
        setup = Setup(args.task, args.imgsz, args.device, args.precision, args.inference_threads)
        result = WORKERS[args.worker](clip, setup, args.worker_out)
        from pipeline.memory import peak_rss_mb

        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return 0

    table = []
    for clip_name in args.clips.split(","):
        truth = ground_truth_total(clips(args.work)[clip_name].ground_truth)
        for task in args.tasks.split(","):
            kinds = ("baseline", "limit", "limit_pipelined", "ours", "ours_no_video")
            runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
            setup = Setup(task, args.imgsz, args.device, args.precision, args.inference_threads)
            for repeat in range(args.repeats):
                for kind in runs:  # alternated, so drift in machine load hits all of them alike
                    result = measure(kind, clip_name, setup, args.work)
                    runs[kind].append(result)
                    print(f"[{clip_name} {task} #{repeat + 1}] {kind}: {result['fps']:.1f} FPS", file=sys.stderr)
            fps = {kind: summarize([r["fps"] for r in results]) for kind, results in runs.items()}
            fps_per_run = {kind: [round(r["fps"], 2) for r in results] for kind, results in runs.items()}
            row = {
                "clip": clip_name,
                "task": task,
                "fps": fps,
                "fps_per_run": fps_per_run,
                "ours_vs_baseline": round(fps["ours"]["median"] / fps["baseline"]["median"], 2),
                "ours_vs_limit": round(fps["ours"]["median"] / fps["limit"]["median"], 2),
                "ours_vs_limit_pipelined": round(fps["ours"]["median"] / fps["limit_pipelined"]["median"], 2),
                "ours_vs_limit_paired": paired_ratios(runs, "ours", "limit"),
                "ours_no_video_vs_limit": round(fps["ours_no_video"]["median"] / fps["limit"]["median"], 2),
                "peak_rss_mb": {kind: max(r["peak_rss_mb"] for r in results) for kind, results in runs.items()},
                "count_ground_truth": truth,
                "count_ours": runs["ours"][-1].get("count"),
                "count_ours_no_video": runs["ours_no_video"][-1].get("count"),
                "count_baseline": runs["baseline"][-1].get("count"),
                "backend": runs["ours"][-1]["backend"],
                "precision": {kind: runs[kind][-1]["precision"] for kind in ("limit", "ours")},
                "input_size": runs["ours"][-1]["input_size"],
                "inference_threads_ours": [r["inference_threads"] for r in runs["ours"]],
            }
            table.append(row)
    output = args.output or args.work / "benchmark.json"
    machine = f"{os.cpu_count()} CPUs, {cpu_name()}, device {args.device}{_gpu_name(args.device)}"
    output.write_text(json.dumps({"machine": machine, "repeats": args.repeats, "results": table}, indent=2) + "\n")
    print(format_table(table, machine))
    print(f"written {output}")
    return 0


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (``unknown CPU`` where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _gpu_name(device: str) -> str:
    """The GPU with torch's and CUDA's versions, in brackets, for a CUDA device; else nothing."""
    if not device.startswith("cuda"):
        return ""
    import torch

    name = torch.cuda.get_device_name(torch.device(device))
    return f" ({name}, torch {torch.__version__}, CUDA {torch.version.cuda})"


def format_table(table: list[dict[str, Any]], machine: str) -> str:
    header = (
        "| clip | task | baseline FPS | limit FPS | limit pipelined FPS | ours FPS | ours/baseline | ours/limit "
        "| ours/limit, paired by repetition | ours/limit pipelined | ours without video FPS "
        "| ours without video/limit | peak RSS ours (MB) "
        "| count truth / ours / baseline | ours: backend, precision, input | ours: inference threads per run |"
        f"\n|{'---|' * 16}"
    )
    rows = [f"Machine: {machine}. FPS: median (min-max).", header]
    for row in table:
        fps = row["fps"]
        cell = {k: f"{v['median']:.1f} ({v['min']:.1f}-{v['max']:.1f})" for k, v in fps.items()}
        paired = row["ours_vs_limit_paired"]
        rows.append(
            f"| {row['clip']} | {row['task']} | {cell['baseline']} | {cell['limit']} | {cell['limit_pipelined']} "
            f"| {cell['ours']} | {row['ours_vs_baseline']:.2f} | {row['ours_vs_limit']:.2f} "
            f"| {paired['median']:.2f} ({paired['min']:.2f}-{paired['max']:.2f}) "
            f"| {row['ours_vs_limit_pipelined']:.2f} | {cell['ours_no_video']} | {row['ours_no_video_vs_limit']:.2f} "
            f"| {row['peak_rss_mb']['ours']:.0f} "
            f"| {row['count_ground_truth'] if row['count_ground_truth'] is not None else '-'} / {row['count_ours']} "
            f"/ {row['count_baseline']} | {row['backend']} {row['precision']['ours']} "
            f"{row['input_size'][1]}x{row['input_size'][0]} "
            f"| {', '.join(str(threads) for threads in row['inference_threads_ours'])} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
