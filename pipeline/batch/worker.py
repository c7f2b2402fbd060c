"""What runs on the Ray workers: one item (a video or a slice), or probing a video for ``--split``.

Plain functions of picklable dataclasses, with no Ray import: the scheduler wraps them in
``ray.remote``. Bad input (:class:`~pipeline.errors.PipelineError`: a corrupt file, a line outside
the frame) comes back as a failed result that is not retried; anything else (an I/O error, an
interrupted run) comes back as a retryable failure.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.batch.manifest import DONE_STATUSES
from pipeline.batch.slicing import SliceSpec, plan_slices, probe_timestamps
from pipeline.batch.storage import InputFile, local_input, local_output
from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.io.outputs.sinks import write_json_atomic
from pipeline.runtime import set_torch_threads

if TYPE_CHECKING:  # imported on the worker, with the pipeline
    from pipeline.run.summary import RunSummary


@dataclass(frozen=True)
class ItemTask:
    """One unit of work.

    Attributes:
        id: The item's id in the manifest.
        input: The video.
        output: The item's output folder (local path or URL).
        config: The batch's config (``source.path`` and ``output.dir`` are set per item).
        part: The slice to process, or None for the whole video.
        threads: CPU threads for inference (the task's ``num_cpus``), or None to leave the default.
    """

    id: str
    input: InputFile
    output: str
    config: Config
    part: SliceSpec | None = None
    threads: int | None = None


@dataclass(frozen=True)
class ItemResult:
    """How an attempt at an item ended.

    Attributes:
        id: The item's id.
        status: ``completed``, ``truncated`` (the file ends early: counted to its end) or ``failed``.
        summary: The summary it wrote (``summary.json``), when completed or truncated.
        error: One line saying why it failed.
        retryable: Whether another attempt may succeed (False for bad input).
        elapsed_s: Wall time on the worker.
        started_at: When the worker started it (seconds since the epoch).
    """

    id: str
    status: str
    summary: RunSummary | None = None
    error: str | None = None
    retryable: bool = False
    elapsed_s: float = 0.0
    started_at: float | None = None

    @property
    def frames(self) -> int:
        return self.summary.frames if self.summary else 0


@dataclass(frozen=True)
class PlanResult:
    """A probed video's slices, or why it could not be probed."""

    video: str
    frames: int = 0
    slices: tuple[SliceSpec, ...] = ()
    error: str | None = None
    retryable: bool = False


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _relocated(summary: RunSummary, task: ItemTask, out_dir: Path) -> RunSummary:
    """The summary naming the input and output as the batch knows them (not a worker's temporary
    copies), rewritten in ``summary.json`` when they differ."""
    relocated = dataclasses.replace(summary, source=task.input.url, output_dir=task.output)
    if relocated != summary:
        write_json_atomic(out_dir / "summary.json", relocated.to_json())
    return relocated


def process_item(task: ItemTask) -> ItemResult:
    """Run the pipeline over one item, as ``vpipe run`` does, and write its outputs.

    Never raises for a failing item: the failure and whether to retry it come back in the result.
    """
    from pipeline.batch.slice_runner import run_slice
    from pipeline.run.runner import run

    started, started_at = time.perf_counter(), round(time.time(), 3)
    try:
        set_torch_threads(cpus=task.threads)
        with local_input(task.input.url) as path, local_output(task.output) as out_dir:
            config = dataclasses.replace(
                task.config,
                source=dataclasses.replace(task.config.source, path=path),
                output=dataclasses.replace(task.config.output, dir=str(out_dir), overwrite=True),  # a retry reruns here
            )
            summary = run_slice(config, task.part) if task.part is not None else run(config, progress=False)
            summary = _relocated(summary, task, out_dir)
    except PipelineError as exc:
        return ItemResult(task.id, "failed", error=str(exc), elapsed_s=time.perf_counter() - started)
    except Exception as exc:  # anything unexpected on a worker (I/O, memory): worth another attempt
        return ItemResult(
            task.id, "failed", error=_describe(exc), retryable=True, elapsed_s=time.perf_counter() - started
        )
    timing = {"elapsed_s": time.perf_counter() - started, "started_at": started_at}
    if summary.status not in DONE_STATUSES:
        return ItemResult(task.id, "failed", summary, f"run {summary.status}", retryable=True, **timing)
    return ItemResult(task.id, summary.status, summary, **timing)


def plan_video(video: InputFile, split_s: Fraction, overlap_s: Fraction, max_frames: int | None) -> PlanResult:
    """Probe a video's frame timestamps and cut it into slices (see :func:`plan_slices`)."""
    try:
        with local_input(video.url) as path:
            pts, time_base = probe_timestamps(path, max_frames=max_frames)
    except PipelineError as exc:
        return PlanResult(video.relative, error=str(exc))
    except Exception as exc:  # e.g. a network error while copying from an object store
        return PlanResult(video.relative, error=_describe(exc), retryable=True)
    return PlanResult(video.relative, len(pts), tuple(plan_slices(pts, time_base, split_s, overlap_s)))
