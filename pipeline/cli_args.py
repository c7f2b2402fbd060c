"""Flags shared by vpipe's subcommands (``run``, ``batch``): the argument types (each parses one
flag's text or raises ``argparse.ArgumentTypeError`` with what was expected), and the model flags
with their mapping onto the config.

Example:
    >>> line_arg("gate:0,10,100,10")
    {'name': 'gate', 'start': [0.0, 10.0], 'end': [100.0, 10.0]}
    >>> positive_int("3")
    3
"""

from __future__ import annotations

import argparse
from typing import Any, get_args

from pipeline.config.sections import Backend, Precision, Task

FLAG_NAMES = {
    "source.path": "SOURCE",
    "source.max_frames": "--max-frames",
    "source.read_policy": "--read-policy",
    "source.stall_timeout_s": "--stall-timeout",
    "source.sample_every_s": "--sample-every",
    "source.max_reconnects": "--max-reconnects",
    "source.workers": "--workers",
    "source.shared_inference": "--shared-inference",
    "model.weights": "--model",
    "model.task": "--task",
    "model.device": "--device",
    "model.imgsz": "--imgsz",
    "model.conf": "--conf",
    "model.classes": "--classes",
    "model.inference_threads": "--inference-threads",
    "model.backend": "--backend",
    "model.precision": "--precision",
    "model.calibration": "--calibration",
    "model.upscale": "--upscale",
    "model.detect_every": "--detect-every",
    "model.motion_gate": "--motion-gate",
    "lines": "--line",
    "output.dir": "--output",
    "output.overwrite": "--overwrite",
    "output.video": "--no-video",
    "output.rotate": "--rotate",
    "output.store": "--store",
}
"""The flag that sets each config key, so an error in a value a flag gave names the flag (see
:func:`pipeline.config.load_config`)."""


def line_arg(text: str) -> dict[str, Any]:
    """Parse ``NAME:x1,y1,x2,y2`` into a ``lines`` config entry."""
    name, _, coords = text.partition(":")
    try:
        x1, y1, x2, y2 = (float(value) for value in coords.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME:x1,y1,x2,y2, got {text!r}") from None
    if not name:
        raise argparse.ArgumentTypeError(f"the line needs a name: NAME:x1,y1,x2,y2, got {text!r}")
    return {"name": name, "start": [x1, y1], "end": [x2, y2]}


def positive_int(text: str) -> int:
    """Parse an integer > 0."""
    if not text.strip().isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def positive_int_or_auto(text: str) -> int | str:
    """Parse a positive integer or ``auto`` (``--detect-every``, ``--workers``).

    Example:
        >>> positive_int_or_auto("3"), positive_int_or_auto("auto")
        (3, 'auto')
    """
    if text.strip() == "auto":
        return "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or auto, got {text!r}") from None


def add_model_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add the model flags every subcommand has; :func:`model_overrides` maps them onto the config."""
    parser.add_argument("--model", "-m", metavar="WEIGHTS", help="weights path, file in models/, or Ultralytics name")
    parser.add_argument("--task", choices=get_args(Task), help="detect (boxes) or segment (boxes + masks)")
    parser.add_argument("--device", metavar="DEV", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument(
        "--imgsz", type=positive_int, metavar="PX", help="long side of the model input in pixels (default 640)"
    )
    parser.add_argument("--conf", type=float, metavar="P", help="detector confidence threshold (default 0.1)")
    parser.add_argument("--classes", metavar="NAMES", help="comma-separated class names to keep, e.g. car,truck,bus")
    parser.add_argument(
        "--inference-threads",
        type=positive_int,
        metavar="N",
        help="CPU threads for OpenVINO inference in a run (default: every core or one fewer, "
        "whichever the first frames run faster with)",
    )
    parser.add_argument(
        "--backend",
        choices=get_args(Backend),
        help="inference engine for .pt weights, exported once and cached (default auto: fastest installed)",
    )
    parser.add_argument(
        "--precision",
        choices=get_args(Precision),
        help="OpenVINO export precision; int8 is quantized once and cached (default auto: int8 on a CPU with VNNI/AMX)",
    )
    parser.add_argument(
        "--calibration",
        metavar="SOURCE",
        help="video, folder or glob to calibrate int8 on (default: models/calibration/)",
    )
    parser.add_argument(
        "--upscale",
        action=argparse.BooleanOptionalAction,
        help="upscale a source smaller than --imgsz to it (default; --no-upscale: run it at its own size)",
    )
    parser.add_argument(
        "--detect-every",
        type=positive_int_or_auto,
        metavar="N",
        help="run the detector on every Nth frame; the tracker predicts the frames between (default 1); "
        "auto: per camera, the smallest interval (1 to 4) that keeps it real time",
    )
    parser.add_argument(
        "--motion-gate",
        action="store_true",
        help="skip the detector on frames unchanged since the last detected one (at least one a second "
        "is detected); for parking cameras and quiet roads",
    )


def model_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``model`` config section from the flags :func:`add_model_flags` adds (``--model``, ``--task``,
    ``--device``, ``--imgsz``, ``--conf``, ``--classes``, ``--inference-threads``, ``--backend``,
    ``--precision``, ``--calibration``, ``--upscale``/``--no-upscale``, ``--detect-every``,
    ``--motion-gate``); unset flags are left out."""
    classes = [name.strip() for name in args.classes.split(",") if name.strip()] if args.classes else None
    values = {
        "weights": args.model,
        "task": args.task,
        "device": args.device,
        "imgsz": args.imgsz,
        "conf": args.conf,
        "classes": classes,
        "inference_threads": args.inference_threads,
        "backend": args.backend,
        "precision": args.precision,
        "calibration": args.calibration,
        "upscale": args.upscale,
        "detect_every": args.detect_every,
        "motion_gate": True if args.motion_gate else None,
    }
    return {key: value for key, value in values.items() if value is not None}
