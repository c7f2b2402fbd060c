"""How many cameras one machine carries: N copies of a clip as simulated cameras in one ``vpipe run``.

For each N, a ``.streams`` list names the clip N times and ``vpipe run`` processes it as fast as it
can (files in a list are not paced), so the frames per second each camera gets is what the machine
gives it with N cameras sharing it. A camera holds real time when that rate is at least the clip's
own frame rate: paced at its rate, it would keep up. Every camera's line crossings are compared,
event by event (line, direction, frame; track IDs may differ), with those of the clip run alone with
the same flags.

The clip is scaled once to ``--size`` (default 1920x1080) into ``--work`` and its config's lines and
zones with it. Runs alternate over the N values (and the ``--variants``, sets of flags compared with
each other) within each repetition, so a machine that slows down favours none; the table gives
medians over repetitions of the slowest and the median camera's rate.
The machine's load average (1 min) before each run is reported: on a shared machine, compare rows
of one table, not tables of different runs.

Usage::

    python scripts/fleet_bench.py --cameras 1 2 4 --repeats 3                  # annotated video on
    python scripts/fleet_bench.py --cameras 4 8 --no-video --detect-every 3
    python scripts/fleet_bench.py --cameras 4 --write-docs                      # table into docs/performance.md
    python scripts/fleet_bench.py --cameras 4 --variants "--workers 1" "--workers 2"
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "false")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DOCS_HEADING = "## Cameras per machine"


@dataclass(frozen=True)
class FleetRun:
    """One ``vpipe run`` of N cameras."""

    cameras: int
    fps: list[float]
    """Each camera's ``processing_fps``."""
    crossings: list[list[tuple[str, str, int]]]
    """Each camera's line crossings as (line, direction, frame_index), in order."""
    load: float
    """The 1-minute load average just before the run."""


def scaled_clip(clip: Path, size: tuple[int, int], work: Path) -> Path:
    """``clip`` scaled to ``size`` (H.264, its frame rate and frame count), made once into ``work``."""
    import av
    import cv2

    from pipeline.io.outputs.sinks import H264VideoSink

    target = work / f"{clip.stem}_{size[0]}x{size[1]}.mp4"
    if target.exists():
        return target
    work.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part.mp4")
    with av.open(str(clip)) as reader:
        video = reader.streams.video[0]
        with H264VideoSink(partial, *size, Fraction(video.average_rate), crf=18, preset="veryfast") as sink:
            for frame in reader.decode(video):
                sink.write(cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_CUBIC))
    partial.rename(target)
    return target


def scaled_config(config: Path, factor: tuple[float, float], work: Path, video_width: int | None) -> Path:
    """``config`` with its lines' and zones' pixel coordinates multiplied by ``factor`` (x, y), and
    ``output.video_width`` set if given."""
    from pipeline.yaml_io import dump_yaml, read_yaml

    data = read_yaml(config, "config file") or {}

    def scale(point: list[float]) -> list[float]:
        return [round(point[0] * factor[0], 2), round(point[1] * factor[1], 2)]

    if data.get("coordinates") != "normalized":
        for line in data.get("lines") or []:
            line["start"], line["end"] = scale(line["start"]), scale(line["end"])
        for zone in data.get("zones") or []:
            zone["polygon"] = [scale(point) for point in zone["polygon"]]
    if video_width is not None:
        data.setdefault("output", {})["video_width"] = video_width
    target = work / f"{config.stem}_x{factor[0]:g}{'' if video_width is None else f'_w{video_width}'}.yaml"
    target.write_text(dump_yaml(data))
    return target


def run_fleet(clip: Path, config: Path, cameras: int, flags: list[str], out: Path) -> FleetRun:
    """One ``vpipe run`` of a list naming ``clip`` ``cameras`` times; each camera's rate and crossings."""
    from pipeline.evaluation import load_counted

    out.mkdir(parents=True, exist_ok=True)
    streams = out / "cameras.streams"
    streams.write_text("".join(f"{clip}\n" for _ in range(cameras)))
    source = clip if cameras == 1 else streams
    command = [sys.executable, "-m", "pipeline", "run", str(source), "--config", str(config)]
    command += ["--output", str(out / "run"), "--overwrite", "--quiet", *flags]
    load = os.getloadavg()[0]
    subprocess.run(command, cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    folders = [out / "run"] if cameras == 1 else sorted(p for p in (out / "run").iterdir() if p.is_dir())
    fps, crossings = [], []
    for folder in folders:
        fps.append(float(json.loads((folder / "summary.json").read_text())["processing_fps"]))
        counted = load_counted(folder / "events.jsonl")
        crossings.append([(c.line, c.direction, c.frame) for c in counted])
    return FleetRun(cameras, fps, crossings, load)


def table(runs: dict[tuple[int, str], list[FleetRun]], source_fps: float, reference: list[tuple[str, str, int]]) -> str:
    """The Markdown table: per N (and variant, if any), the rates (median over repetitions), real time,
    and how many cameras (in the worst repetition) have the single run's crossings event by event, and
    its counts per line and direction (with ``--detect-every auto`` a crossing may be a frame apart:
    the interval follows the measured rate)."""
    variants = any(variant for _, variant in runs)
    rows = [
        f"| cameras |{' flags |' if variants else ''} FPS per camera, slowest | FPS per camera, median | real time (>= "
        f"{source_fps:.2f}) | the single run's crossings: event by event | counts | load (1 min) |",
        "|---|---|---|---|---|---|---|" + ("---|" if variants else ""),
    ]
    counts = Counter((line, direction) for line, direction, _ in reference)
    for (cameras, variant), repeats in runs.items():
        slowest = statistics.median(min(run.fps) for run in repeats)
        middle = statistics.median(statistics.median(run.fps) for run in repeats)
        equal = min(sum(found == reference for found in run.crossings) for run in repeats)
        same = min(sum(Counter((a, b) for a, b, _ in found) == counts for found in run.crossings) for run in repeats)
        loads = ", ".join(f"{run.load:.1f}" for run in repeats)
        holds = "yes" if slowest >= source_fps else "no"
        flags = f" `{variant}` |" if variants else ""
        rows.append(
            f"| {cameras} |{flags} {slowest:.1f} | {middle:.1f} | {holds} | {equal} / {cameras} | {same} / {cameras} "
        )
        rows[-1] += f"| {loads} |"
    return "\n".join(rows)


def write_docs(text: str, key: str, docs: Path) -> None:
    """Put ``text`` between the markers of ``key`` (one per set of flags) in ``docs``: in place of the
    table it had, else at the end of the section ``DOCS_HEADING`` (added at the end if missing)."""
    content = docs.read_text()
    begin, end = f"<!-- fleet_bench {key}: begin -->", f"<!-- fleet_bench {key}: end -->"
    block = f"{begin}\n{text}\n{end}"
    if begin in content:
        content = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, content, flags=re.S)
    elif DOCS_HEADING in content:
        head, _, rest = content.partition(DOCS_HEADING)
        section, heading, tail = rest.partition("\n## ")
        content = f"{head}{DOCS_HEADING}{section.rstrip()}\n\n{block}\n" + (f"\n## {tail}" if heading else "")
    else:
        content = content.rstrip("\n") + f"\n\n{DOCS_HEADING}\n\n{block}\n"
    docs.write_text(content)


def main() -> int:
    from benchmark import cpu_name

    from pipeline.io.sources.files import open_source

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=REPO / "sample_videos" / "highway.mp4")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "traffic.yaml")
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT the clip is scaled to (default 1920x1080)")
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4], help="values of N (default 1 2 4)")
    parser.add_argument("--repeats", type=int, default=1, help="repetitions; medians are reported")
    parser.add_argument("--no-video", action="store_true", help="pass --no-video to vpipe run")
    parser.add_argument("--detect-every", help="pass --detect-every to vpipe run (N or auto)")
    parser.add_argument("--video-width", type=int, help="output.video_width in the config (0: the source's)")
    parser.add_argument("--vpipe-args", default="", help="more flags for vpipe run, e.g. '--device cuda'")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[""],
        help="sets of more vpipe run flags to compare, alternating within each repetition, "
        "e.g. '--workers 1' '--workers 2'",
    )
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "fleet_bench", help="clips and runs")
    parser.add_argument("--write-docs", action="store_true", help="put the table into docs/performance.md")
    args = parser.parse_args()
    match = re.fullmatch(r"(\d+)x(\d+)", args.size)
    if match is None or min(args.cameras) < 1 or args.repeats < 1:
        print("error: --size is WIDTHxHEIGHT, --cameras and --repeats positive", file=sys.stderr)
        return 2
    size = (int(match[1]), int(match[2]))
    original = open_source(str(args.clip))
    factor = (size[0] / original.width, size[1] / original.height)
    source_fps = float(original.fps)
    original.close()
    clip = scaled_clip(args.clip, size, args.work)
    config = scaled_config(args.config, factor, args.work, args.video_width)
    flags = (["--no-video"] if args.no_video else []) + (
        ["--detect-every", args.detect_every] if args.detect_every else []
    )
    flags += shlex.split(args.vpipe_args)
    reference = run_fleet(clip, config, 1, flags, args.work / "reference").crossings[0]
    runs: dict[tuple[int, str], list[FleetRun]] = {(n, v): [] for n in sorted(args.cameras) for v in args.variants}
    for repeat in range(args.repeats):
        for cameras, variant in runs:
            out = args.work / f"n{cameras}_v{args.variants.index(variant)}_{repeat}"
            run = run_fleet(clip, config, cameras, flags + shlex.split(variant), out)
            runs[(cameras, variant)].append(run)
            rates = " ".join(f"{f:.1f}" for f in run.fps)
            print(f"repeat {repeat + 1}, {cameras} cameras {variant}: {rates} (load {run.load:.1f})", flush=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    command = "python scripts/fleet_bench.py " + shlex.join(a for a in sys.argv[1:] if a != "--write-docs")
    text = (
        f"{args.clip.name} scaled to {size[0]}x{size[1]} ({source_fps:.2f} fps, {len(reference)} crossings run alone), "
        f"{'without' if args.no_video else 'with'} the annotated video"
        f"{f', --detect-every {args.detect_every}' if args.detect_every else ''}"
        f"{f', output.video_width {args.video_width}' if args.video_width is not None else ''}"
        f"{f', {args.vpipe_args}' if args.vpipe_args else ''}; "
        f"{cores} cores of an {cpu_name()}, "
        f"{time.strftime('%Y-%m-%d')}, medians of {args.repeats}. Reproduce: `{command}`\n\n"
        + table(runs, source_fps, reference)
    )
    print(text)
    if args.write_docs:
        key = ("no-video" if args.no_video else "video") + (
            f" detect-every {args.detect_every}" if args.detect_every else ""
        )
        key += f" video_width {args.video_width}" if args.video_width is not None else ""
        key += f" {args.vpipe_args}" if args.vpipe_args else ""
        key += f" variants {' / '.join(args.variants)}" if any(args.variants) else ""
        write_docs(text, key, REPO / "docs" / "performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
