"""Command line: ``vpipe run SOURCE [flags]`` (also ``python -m pipeline run``).

Flags override the config file; errors in input are reported as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, get_args

from pipeline import __version__
from pipeline.batch.cli import add_batch_parser, command_batch
from pipeline.cli_args import FLAG_NAMES, add_model_flags, line_arg, model_overrides, positive_int, positive_int_or_auto
from pipeline.cli_main import OneLineErrorParser, run_command
from pipeline.config.sections import ReadPolicy
from pipeline.editor.cli import add_parser as add_edit_parser
from pipeline.editor.cli import command_edit, start_editors
from pipeline.stopping import exit_at_once_on_stop, stop_gracefully_from_now
from pipeline.store.cli import add_parsers as add_store_parsers
from pipeline.store.cli import command_import, command_report

if TYPE_CHECKING:  # the run's modules load the model's libraries: imported when a command needs them
    from pipeline.run.summary import ModelInfo, RunSummary

DESCRIPTION = """\
Real-time video analytics: YOLO11 detection or segmentation, ByteTrack tracking, line crossing
and zone counts, an annotated H.264 video and per-frame counts (CSV/JSONL)."""

RUN_EPILOG = """\
outputs (in --output, default runs/<source name>/):
  annotated.mp4   H.264 video with boxes, labels, masks, fading trails, lines and zones
  counts.csv      one row per frame: cumulative crossings per line, objects per zone
  events.jsonl    one JSON object per line crossing
  summary.json    totals per line, direction and class; zone statistics; processing FPS

The same command into a folder that holds a run of the same source and config continues that run
(ended, stopped or killed): new numbered files beside the old ones, counts carried on.

examples:
  vpipe run sample_videos/highway.mp4 --config configs/traffic.yaml
  vpipe run sample_videos/highway.mp4 --task segment --line main:150,330,830,330
  vpipe run "frames/*.jpg" --classes car,truck --no-video

exit codes: 0 done (or stopped with Ctrl-C or SIGTERM, outputs valid), 2 bad input (config, source, model,
  output folder; or every source failed) or an output that could not be written (a full disk; see
  docs/outputs.md), 3 partly done: a source failed while others ran, or a video was truncated (see
  docs/live.md), 4 the output folder is another run's (another source or config, or a vpipe process
  writing it)"""


MAX_GRID = 100
"""``vpipe slots --grid``: at most this many rows and columns."""
MIN_SLOT_PX = 4
"""``vpipe slots``: a grid cell narrower or shorter than this is refused."""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="vpipe", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"vpipe {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineErrorParser)

    run = commands.add_parser(
        "run",
        help="process one video, image folder or glob",
        description="Detect, track, count and annotate every frame of SOURCE.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "source",
        metavar="SOURCE",
        help="video file, image folder or glob ('frames/*.jpg'), webcam index (0), stream URL (rtsp://, rtmp://, "
        "http(s)://), or a .streams file listing several sources (one model, batched; see --workers)",
    )
    run.add_argument("--config", "-c", metavar="YAML", help="config file (see configs/example.yaml for every key)")
    run.add_argument("--output", "-o", metavar="DIR", help="output folder (default: runs/<source name>)")
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run's outputs in the output folder (removed first) instead of continuing that "
        "run or refusing another's",
    )
    add_model_flags(run)
    run.add_argument(
        "--line",
        type=line_arg,
        action="append",
        metavar="NAME:X1,Y1,X2,Y2",
        help="counting line in source pixels; repeat for several; replaces the config's lines",
    )
    run.add_argument(
        "--workers",
        type=positive_int_or_auto,
        metavar="N",
        help="spread the sources of a .streams list over N processes, each with its own model and a share of "
        "the cores (default 1: one process; auto: one per two cores); outputs and counts are the same",
    )
    run.add_argument(
        "--shared-inference",
        choices=["auto", "true", "false"],
        help="with --workers: true runs the model once for every worker, batched, in a process of its own "
        "(detect models only); false: a model per worker; auto (default): shared on a CUDA GPU only",
    )
    run.add_argument(
        "--max-frames",
        type=positive_int,
        metavar="N",
        help="stop after processing N frames per source (dropped ones do not count)",
    )
    live = run.add_argument_group("live sources")
    live.add_argument(
        "--read-policy",
        choices=get_args(ReadPolicy),
        help="latest: drop old frames to stay real time; all: process every frame (auto: latest for live feeds)",
    )
    live.add_argument("--stall-timeout", type=float, metavar="S", help="seconds without a frame before reconnecting")
    live.add_argument(
        "--max-reconnects", type=int, metavar="N", help="give up after N failed reconnects in a row (default: never)"
    )
    live.add_argument(
        "--sample-every",
        type=float,
        metavar="S",
        help="process one frame every S seconds of source time, skipping the rest before the model",
    )
    live.add_argument("--rotate", metavar="PERIOD|SIZE", help="start new output files every 1h, 30m, 500MB, ...")
    live.add_argument("--show", action="store_true", help="show the annotated video in a window (needs a display)")
    live.add_argument("--serve", type=int, metavar="PORT", help="live web page with the video and counts on PORT")
    live.add_argument("--host", default="127.0.0.1", help="address for --serve (default 127.0.0.1: this machine only)")
    run.add_argument("--no-video", action="store_true", help="skip writing annotated.mp4 (faster)")
    run.add_argument(
        "--store",
        metavar="FILE|URL|none",
        help="store events, interval rows and parking states for vpipe report: a SQLite file, a postgresql:// URL, "
        "or none (default: vpipe.sqlite in the output folder)",
    )
    run.add_argument(
        "--quiet", "-q", action="store_true", help="print nothing but errors (no progress bar, notes or summary table)"
    )

    slots = commands.add_parser(
        "slots",
        help="write a parking slots file (and a PNG to check it) from a grid or another tool's file",
        description=(
            "Split a rectangle of SOURCE's first frame into ROWSxCOLS parking slots (--grid), or convert the "
            "slots of a PKLot XML, CVAT XML, LabelMe JSON, Ultralytics parking points JSON or CNRPark-EXT "
            "camera CSV file (--from); "
            "write them as a YAML slots file and a PNG of the first frame with the slots drawn."
        ),
        epilog="examples:\n  vpipe slots sample_videos/lot_topdown.mp4 --grid 2x4 --region 60,40,720,400 "
        "--output configs/slots/lot_topdown.yaml\n  vpipe slots lot.jpg --from bounding_boxes.json -o slots.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    slots.add_argument("source", metavar="SOURCE", help="video file, folder of images, or a glob")
    slots.add_argument("--grid", type=_grid_arg, metavar="ROWSxCOLS", help="e.g. 2x5")
    slots.add_argument("--from", dest="from_file", metavar="FILE", help="convert this file's slots instead")
    slots.add_argument(
        "--region", type=_region_arg, metavar="X1,Y1,X2,Y2", help="rectangle to split, in pixels (default: whole frame)"
    )
    slots.add_argument(
        "--output", "-o", default="slots.yaml", metavar="YAML", help="slots file (PNG written beside it)"
    )
    add_batch_parser(commands)
    add_edit_parser(commands)
    add_store_parsers(commands)
    return parser


def _grid_arg(text: str) -> tuple[int, int]:
    rows, _, columns = text.lower().partition("x")
    if not (rows.isdigit() and columns.isdigit() and 0 < int(rows) <= MAX_GRID and 0 < int(columns) <= MAX_GRID):
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS such as 2x5, each from 1 to {MAX_GRID}, got {text!r}")
    return int(rows), int(columns)


def _region_arg(text: str) -> tuple[float, float, float, float]:
    try:
        x1, y1, x2, y2 = (float(value) for value in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X1,Y1,X2,Y2, got {text!r}") from None
    if x2 <= x1 or y2 <= y1:
        raise argparse.ArgumentTypeError(f"expected X1 < X2 and Y1 < Y2, got {text!r}")
    return x1, y1, x2, y2


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Map CLI flags onto the config's nested structure; unset flags leave the config alone."""
    overrides: dict[str, Any] = {"source": {"path": args.source}, "model": model_overrides(args)}
    source_flags = {
        "max_frames": args.max_frames,
        "read_policy": args.read_policy,
        "stall_timeout_s": args.stall_timeout,
        "max_reconnects": args.max_reconnects,
        "sample_every_s": args.sample_every,
        "workers": args.workers,
        "shared_inference": {"true": True, "false": False}.get(args.shared_inference, args.shared_inference),
    }
    overrides["source"].update({key: value for key, value in source_flags.items() if value is not None})
    if args.rotate is not None:
        overrides.setdefault("output", {})["rotate"] = args.rotate
    if args.output is not None:
        overrides.setdefault("output", {})["dir"] = args.output
    if args.overwrite:
        overrides.setdefault("output", {})["overwrite"] = True
    if args.no_video:
        overrides.setdefault("output", {})["video"] = False
    if args.store is not None:
        overrides.setdefault("output", {})["store"] = args.store
    if args.line:
        overrides["lines"] = args.line
    return overrides


def _threads(model: ModelInfo) -> str:
    threads = model.inference_threads
    if not threads:
        return ""
    trial = model.threads_trial_fps
    if not trial:
        return f" with {threads} inference thread{'s' * (threads > 1)}"
    rates = " vs ".join(f"{fps:.0f}" for fps in trial.values())
    return f" with {threads} inference thread{'s' * (threads > 1)} (timed {' vs '.join(trial)}: {rates} FPS)"


def format_summary(summary: RunSummary) -> str:
    """A short plain-text table of the run's counts."""
    model = summary.model
    rows = [
        f"{summary.status}: {summary.frames} frames ({summary.duration_s:.1f} s of video) "
        f"at {summary.processing_fps:.1f} FPS, {summary.tracks_total} tracks, "
        f"model {model.weights} ({model.task}, {model.backend} {model.precision} on {model.device}{_threads(model)}, "
        f"input {model.input_size[1]}x{model.input_size[0]})"
    ]
    if summary.motion_gate is not None:
        gate = summary.motion_gate
        rows.append(
            f"motion gate: {gate['frames_detected']} frames detected, "
            f"{gate['frames_motion_skipped']} skipped as unchanged"
        )
    counts = summary.counts
    if counts.lines:
        rows.append(f"{'line':<16}{'in':>6}{'out':>6}  by class (in / out)")
        for name, line in counts.lines.items():
            classes = sorted(set(line["in"]) | set(line["out"]))
            by_class = ", ".join(f"{c} {line['in'].get(c, 0)}/{line['out'].get(c, 0)}" for c in classes) or "-"
            rows.append(f"{name:<16}{line['in_total']:>6}{line['out_total']:>6}  {by_class}")
    if counts.zones:
        rows.append(f"{'zone':<16}{'max':>6}{'mean':>8}{'enters':>8}{'mean dwell s':>14}")
        for name, zone in counts.zones.items():
            rows.append(
                f"{name:<16}{zone['max_count']:>6}{zone['mean_count']:>8.2f}{zone['enters']:>8}{zone['mean_dwell_s']:>14.1f}"
            )
    if counts.parking is not None:
        parking = counts.parking
        rows.append(f"parking: {parking['occupied_at_end']} occupied, {parking['free_at_end']} free at the end")
        for name, slot in parking["slots"].items():
            rows.append(f"  {name:<14} utilisation {slot['utilisation']:.0%}")
    rows.append(f"outputs: {summary.output_dir}/")
    return "\n".join(rows)


def _command_run(args: argparse.Namespace) -> int:
    exit_at_once_on_stop()  # until the run writes (pipeline.run.runner ends it): nothing to finalize
    try:
        return _run(args)
    finally:
        stop_gracefully_from_now()  # where the run ended before writing, called in-process


def _run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.io.sources.files import read_stream_list
    from pipeline.run.fleet import SourcesFailed
    from pipeline.run.runner import run_sources
    from pipeline.run.workers import check_workers

    config = load_config(args.config, overrides_from_args(args), flag_names=FLAG_NAMES)
    specs = read_stream_list(args.source) if args.source.endswith(".streams") else [args.source]
    check_workers(config, len(specs), live_view=args.serve is not None or args.show)
    with ExitStack() as stack:
        viewers = []
        if args.serve is not None:
            from pipeline.io.live.view import LiveView

            links = start_editors(stack, specs, args.config)  # the page links each source's editor
            view = stack.enter_context(LiveView(host=args.host, port=args.serve, links=links))  # entering starts it
            if view.exposed and not args.quiet:
                editors = "; the config editors stay on 127.0.0.1" if links else ""
                print(
                    f"vpipe: warning: live view listens on {view.address}: anyone who can reach this machine can "
                    f"watch the video and read the counts, their history in the store, metrics and health{editors}",
                    file=sys.stderr,
                )
            if not args.quiet:
                print(f"live view: {view.describe()}", file=sys.stderr)
            viewers.append(view)
        if args.show:
            from pipeline.io.live.windows import WindowView

            viewers.append(stack.enter_context(WindowView()))
        try:
            summaries = run_sources(config, specs, progress=not args.quiet, viewers=viewers)
        except SourcesFailed as failed:
            if not args.quiet and failed.summaries:  # those that ran, before the line on those that failed
                print("\n\n".join(format_summary(summary) for summary in failed.summaries))
            raise
    if not args.quiet:
        print("\n\n".join(format_summary(summary) for summary in summaries))
    return 3 if any(summary.status == "truncated" for summary in summaries) else 0


def _command_slots(args: argparse.Namespace) -> int:
    import cv2

    from pipeline.analytics.parking import grid_slots
    from pipeline.annotators.overlays import draw_slot_names
    from pipeline.config.geometry import MAX_SLOTS
    from pipeline.errors import ConfigError
    from pipeline.io.outputs.folders import check_output_file, output_error
    from pipeline.io.slot_formats import read_slot_file
    from pipeline.io.sources.files import open_source
    from pipeline.yaml_io import dump_yaml

    output = Path(args.output)
    preview = output.with_suffix(".png")
    check_output_file(output)
    check_output_file(preview)
    source = open_source(args.source, max_frames=1)
    try:
        first = next(iter(source)).image
    finally:
        source.close()
    if (args.grid is None) == (args.from_file is None):
        raise ConfigError("give either --grid ROWSxCOLS or --from FILE")
    if args.from_file:
        slots = read_slot_file(args.from_file, (source.width, source.height))
        header = f"# Parking slots for {args.source}, converted from {args.from_file}.\n"
    else:
        region = args.region or (0, 0, source.width, source.height)
        if region[2] > source.width or region[3] > source.height:
            raise ConfigError(f"--region {region} reaches outside the {source.width}x{source.height} frame")
        rows, columns = args.grid
        if (region[2] - region[0]) / columns < MIN_SLOT_PX or (region[3] - region[1]) / rows < MIN_SLOT_PX:
            raise ConfigError(
                f"--grid {rows}x{columns} makes slots smaller than {MIN_SLOT_PX} px in the region {region}"
            )
        slots = grid_slots(region, rows, columns)
        header = f"# Parking slots for {args.source}: {rows}x{columns} grid over {region}. Edit the polygons to fit.\n"
    if len(slots) > MAX_SLOTS:  # a file vpipe run would refuse
        source_text = f"--grid {args.grid[0]}x{args.grid[1]}" if args.grid else str(args.from_file)
        raise ConfigError(f"{source_text}: {len(slots)} slots, more than the {MAX_SLOTS} a config may have")
    records = [
        {"name": name, "polygon": [[round(x, 1), round(y, 1)] for x, y in polygon]} for name, polygon in slots.items()
    ]
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(header + dump_yaml(records), encoding="utf-8")
        if not cv2.imwrite(str(preview), draw_slot_names(first, slots)):
            raise OSError(f"cannot encode {preview.name}")
    except OSError as exc:
        raise output_error(output, exc) from None
    print(f"wrote {len(slots)} slots to {output} and a preview to {preview}")
    return 0


COMMANDS = {
    "run": _command_run,
    "slots": _command_slots,
    "batch": command_batch,
    "edit": command_edit,
    "report": command_report,
    "import": command_import,
}


def _exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown: every output is closed and written by
    now, and unloading PyTorch and OpenVINO can take seconds, past a container's stop grace period."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code. As the process itself (``argv`` None), ``run`` and
    ``slots`` end it at once instead (see :func:`_exit_now`)."""
    args = build_parser().parse_args(argv)
    code = run_command(COMMANDS[args.command], args)
    if argv is None and args.command in ("run", "slots"):  # batch: Ray's own shutdown must run
        _exit_now(code)
    return code
