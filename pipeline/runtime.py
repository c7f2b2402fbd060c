"""Process-wide settings, all in one place: offline and private defaults for the libraries vpipe
loads (applied when ``pipeline`` is imported, before any of them is), what the command line shows
(log levels, third-party warnings), and the size of torch's thread pool.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import TextIO

from tqdm import tqdm


def set_library_defaults() -> None:
    """Offline, quiet and private defaults for Ultralytics and OpenVINO; a user's own settings win.

    Ultralytics probes the network when it is imported and downloads weights, fonts and packages on
    demand: offline unless the user sets ``YOLO_OFFLINE=0``; its per-model banners would break the
    progress bar. ``import openvino`` sends a usage event to Google Analytics (and writes an ID
    under ~/intel) unless the user opted out through a file in their home folder: a camera box must
    not phone home. Every OpenVINO and NNCF tool falls back to a no-op when the telemetry package
    cannot be imported.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]


class _ProgressBarSafeHandler(logging.StreamHandler[TextIO]):
    """Writes each record through :meth:`tqdm.write`, which takes a progress bar drawn on the same
    stream off its line first and draws it again below: a warning logged mid-run starts its own line
    instead of ending the bar's."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # as logging.StreamHandler does: a broken stream must not stop the run
            self.handleError(record)


def configure_output(quiet: bool) -> None:
    """What a command shows on stderr besides its own output: vpipe's notes (an export being built,
    a resolution change) and warnings, or with ``quiet`` errors only; never third-party warnings
    about their own internals, which a user cannot act on (e.g. torch.jit's deprecation of itself while
    an export traces the model). Log lines never share a line with a progress bar."""
    logging.basicConfig(
        level=logging.ERROR if quiet else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[_ProgressBarSafeHandler(sys.stderr)],
    )
    logging.getLogger("pipeline").setLevel(logging.ERROR if quiet else logging.INFO)
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # NNCF imports it: CUDA noise
    for category in (DeprecationWarning, FutureWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(torch|torchvision|ultralytics|nncf|openvino)\b")


def set_torch_threads(backend: str | None = None, cpus: int | None = None) -> None:
    """Size torch's thread pool (process-wide, as the pool is).

    Where another engine runs the model, torch only does NMS and mask arithmetic: small operations
    between which its pool's workers spin and take cores from the engine's inference, so one thread.
    Otherwise ``cpus`` if given (a batch item's share of the machine), else torch's own default.

    Args:
        backend: The run's backend (None: not known yet).
        cpus: The CPUs this process may use.
    """
    if backend not in (None, "torch"):
        threads = 1
    elif cpus:
        threads = cpus
    else:
        return
    import torch

    torch.set_num_threads(threads)
