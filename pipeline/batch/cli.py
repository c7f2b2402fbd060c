"""Command line: ``vpipe batch PATTERN --config YAML --output DIR [flags]`` (also ``python -m pipeline.batch``).

:func:`add_batch_parser` adds the ``batch`` subcommand to vpipe's parser; :func:`command_batch`
runs it and returns the exit code: 0 every video completed, 1 some failed (listed), 2 bad input
(raised as :class:`~pipeline.errors.PipelineError`), 3 some truncated (counted to where they end),
130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.cli_args import FLAG_NAMES, add_model_flags, line_arg, model_overrides, positive_int
from pipeline.cli_main import OneLineErrorParser, run_command
from pipeline.durations import parse_duration
from pipeline.errors import PipelineError

if TYPE_CHECKING:  # the job pulls in the pipeline's heavy modules: imported when a batch runs
    from pipeline.batch.job import BatchReport, BatchRequest

BATCH_EPILOG = """\
Each video (or, with --split, each slice of one) is a Ray task running the same pipeline as
vpipe run. Outputs go to DIR/<relative path without suffix>/ (slices in part-NNNN/ below it), with
DIR/batch_summary.csv (one row per video), DIR/batch_summary.json and DIR/batch_manifest.jsonl.
Rerunning the same command skips what finished (completed, or truncated: a file that ends early
is counted to its end; same input size and mtime, same settings) and retries what failed.

examples:
  vpipe batch "archive/**/*.mp4" --config configs/traffic.yaml --output runs/archive
  vpipe batch "archive/**/*.mp4" --config configs/traffic.yaml --output runs/archive --ray-address auto
  vpipe batch "s3://city/cams/**/*.mp4" -c configs/traffic.yaml -o s3://city/counts --split 10m --num-gpus 0.25

exit codes: 0 all videos completed, 1 some failed (listed at the end), 2 bad input, 3 some truncated
(none failed; listed at the end), 130 interrupted"""


def _duration(text: str) -> Fraction:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_duration(text: str) -> Fraction:
    value = _duration(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration above zero, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def _resource(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_batch_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``batch`` to vpipe's subcommands (the object ``add_subparsers`` returned)."""
    batch = commands.add_parser(
        "batch",
        help="process many videos (a glob, a folder, s3://...) on Ray, resumable",
        description="Run the pipeline over every video PATTERN matches, as Ray tasks, locally or on a cluster.",
        epilog=BATCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("pattern", metavar="PATTERN", help="glob ('archive/**/*.mp4'), folder, file, or such a URL")
    batch.add_argument("--config", "-c", metavar="YAML", help="config file (see configs/example.yaml)")
    batch.add_argument("--output", "-o", required=True, metavar="DIR", help="output folder (local or URL)")
    cluster = batch.add_argument_group("cluster")
    cluster.add_argument(
        "--ray-address", metavar="ADDR", help="Ray cluster to use: auto, HOST:PORT (default: start Ray here)"
    )
    cluster.add_argument("--workers", type=positive_int, metavar="N", help="process at most N items at once")
    cluster.add_argument("--num-cpus", type=_resource, default=1.0, metavar="C", help="CPUs per item (default 1)")
    cluster.add_argument(
        "--num-gpus", type=_resource, default=0.0, metavar="G", help="GPUs per item, e.g. 0.25 (default 0)"
    )
    cluster.add_argument(
        "--split",
        type=_positive_duration,
        metavar="DUR",
        help="cut videos into slices of DUR (10m, 90s, 1h) run in parallel",
    )
    cluster.add_argument(
        "--overlap",
        type=_duration,
        default=Fraction(5),
        metavar="DUR",
        help="tracker warm-up before each slice (default 5s)",
    )
    cluster.add_argument(
        "--retries",
        type=_count,
        default=2,
        metavar="N",
        help="retry an item failing for a reason other than bad input (default 2)",
    )
    model = batch.add_argument_group("pipeline (as in vpipe run)")
    add_model_flags(model)
    model.add_argument(
        "--line", type=line_arg, action="append", metavar="NAME:X1,Y1,X2,Y2", help="counting line; repeatable"
    )
    model.add_argument("--max-frames", type=positive_int, metavar="N", help="stop each video after N frames")
    model.add_argument("--no-video", action="store_true", help="skip annotated.mp4 (faster)")
    batch.add_argument("--quiet", "-q", action="store_true", help="no progress bar or report (failures still listed)")
    return batch


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Map the pipeline flags onto the config's nested structure; unset flags leave the config alone."""
    overrides: dict[str, Any] = {"model": model_overrides(args)}
    if args.max_frames is not None:
        overrides["source"] = {"max_frames": args.max_frames}
    if args.no_video:
        overrides["output"] = {"video": False}
    if args.line:
        overrides["lines"] = args.line
    return overrides


def build_request(args: argparse.Namespace) -> BatchRequest:
    """Validate the arguments and load the config into a :class:`~pipeline.batch.job.BatchRequest`.

    Raises:
        PipelineError: A bad config, or settings that cannot work together.
    """
    from pipeline.batch.job import BatchRequest
    from pipeline.batch.storage import is_url
    from pipeline.config import load_config
    from pipeline.io.outputs.folders import check_output_dir

    config = load_config(args.config, config_overrides(args), flag_names=FLAG_NAMES)
    if not is_url(args.output):
        check_output_dir(args.output)  # a rerun resumes in the same folder: no --overwrite needed
    if args.split is not None and config.parking.slots:
        raise config.error("parking", "parking slots cannot be split into slices (occupancy spans them); drop --split")
    if args.num_cpus <= 0:
        raise PipelineError(f"--num-cpus: expected a number above zero, got {args.num_cpus:g}")
    if args.num_gpus == 0 and config.model.device == "auto":
        config.model.device = "cpu"  # no GPU reserved for the task: do not take one unasked
    if args.ray_address is None:  # the workers run on this machine: refuse a device it lacks now, not per item
        from pipeline.models import resolve_model

        resolve_model(config.model, frame_size=(640, 640))
    weights = config.model.weights
    if weights and Path(weights).exists():  # workers run elsewhere (another folder, another node)
        config.model.weights = str(Path(weights).absolute())
    return BatchRequest(
        pattern=args.pattern if is_url(args.pattern) else str(Path(args.pattern).expanduser()),
        output=args.output,
        config=config,
        split_s=args.split,
        overlap_s=args.overlap,
        ray_address=args.ray_address,
        workers=args.workers,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        retries=args.retries,
        progress=not args.quiet,
    )


def format_report(report: BatchReport) -> str:
    """The end-of-batch report: video counts, this run's throughput, where the summaries are."""
    statuses = {
        s: sum(1 for o in report.outcomes if o.status == s) for s in ("completed", "truncated", "failed", "pending")
    }
    rows = [
        f"{len(report.outcomes)} videos: {statuses['completed']} completed, {statuses['truncated']} truncated, "
        f"{statuses['failed']} failed, {statuses['pending']} pending; this run: {report.items_finished} items, "
        f"{report.frames} frames in {report.wall_s:.1f} s ({report.frames_per_s:.1f} frames/s)"
    ]
    rows += [
        f"truncated: {o.video}: the file ends early, counted over its {o.summary.frames} frames"
        for o in report.truncated
        if o.summary
    ]
    if report.interrupted:
        rows.append("interrupted: rerun the same command to resume (finished items are kept)")
    rows.append(f"outputs: {', '.join(report.summary_files)}")
    return "\n".join(rows)


def format_failures(report: BatchReport) -> str:
    """One line per failed video and why."""
    return "\n".join(f"failed: {outcome.video}: {outcome.error}" for outcome in report.failed)


def command_batch(args: argparse.Namespace) -> int:
    """Run ``vpipe batch``; returns 0 (all completed), 1 (some failed), 3 (some truncated, none
    failed) or 130 (interrupted).

    Raises:
        PipelineError: Ray is missing, bad config, no inputs, Ray unreachable (exit code 2).
    """
    from pipeline.batch.job import BatchJob
    from pipeline.batch.scheduler import import_ray

    ray = import_ray(local=args.ray_address is None)
    request = build_request(args)
    report = BatchJob(request, ray).run()
    if not args.quiet:
        print(format_report(report))
    if report.failed:
        print(format_failures(report), file=sys.stdout if not args.quiet else sys.stderr)
    if report.interrupted:
        return 130
    return 1 if report.failed else 3 if report.truncated else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipeline.batch PATTERN ...``: the same as ``vpipe batch PATTERN ...``."""
    parser = OneLineErrorParser(prog="vpipe", formatter_class=argparse.RawDescriptionHelpFormatter)
    add_batch_parser(parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser))
    args = parser.parse_args(["batch", *(sys.argv[1:] if argv is None else argv)])
    return run_command(command_batch, args)
