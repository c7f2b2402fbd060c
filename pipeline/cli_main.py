"""What every vpipe subcommand runs inside: usage errors in one line, process settings, SIGTERM
handled as Ctrl-C, and a user's error as one line with its exit code instead of a traceback."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from pipeline.errors import PipelineError
from pipeline.io.urls import mask_credentials
from pipeline.runtime import configure_output


def _unquoted_glob_hint(message: str) -> str:
    """For "unrecognized arguments" that are all existing files: the shell expanded an unquoted glob."""
    prefix = "unrecognized arguments: "
    extra = message[len(prefix) :].split(" ") if message.startswith(prefix) else []
    if not extra or not all(Path(arg).exists() for arg in extra):
        return message
    shown = " ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
    return (
        f"unrecognized arguments: {shown}: the shell expanded an unquoted pattern into {len(extra) + 1} files; "
        "quote it ('frames/*.jpg') so vpipe gets the pattern"
    )


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (exit code 2, credentials masked)."""

    def error(self, message: str) -> NoReturn:
        message = mask_credentials(_unquoted_glob_hint(message))
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # each command finalizes its outputs on it, as on Ctrl-C


def run_command(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one parsed subcommand as the process's main work and return the process exit code.

    Returns:
        The command's own code; a :class:`~pipeline.errors.PipelineError`'s (2: bad input), printed
        as one line with any credentials masked; 130 when interrupted (Ctrl-C or SIGTERM).
    """
    configure_output(quiet=getattr(args, "quiet", False))
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return command(args)
    except PipelineError as exc:
        print(f"vpipe: error: {mask_credentials(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vpipe: interrupted", file=sys.stderr)
        return 130
