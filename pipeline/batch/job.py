"""A batch from start to end: find the inputs, skip what the manifest says is finished, run the
rest on Ray (probing videos for ``--split`` first), retry failures, record every finished item,
and write the merged summaries.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from types import ModuleType
from typing import Any

from tqdm import tqdm

from pipeline.batch.manifest import DONE_STATUSES, ItemRecord, Manifest, PlanRecord
from pipeline.batch.outcomes import SUMMARY_CSV, SUMMARY_JSON, Outcomes, item_id
from pipeline.batch.scheduler import RaySession, TaskKey, TaskPool
from pipeline.batch.slicing import SliceSpec
from pipeline.batch.storage import InputFile, OutputFolder, list_inputs, video_folder
from pipeline.batch.summaries import VideoOutcome
from pipeline.batch.worker import ItemResult, ItemTask, PlanResult, plan_video, process_item
from pipeline.config import Config
from pipeline.durations import format_duration
from pipeline.errors import SourceError


@dataclass(frozen=True)
class BatchRequest:
    """Everything ``vpipe batch`` was asked to do.

    Attributes:
        pattern: Glob, file or folder of input videos (local or URL).
        output: Output folder (local or URL).
        config: The validated config every item runs with.
        split_s: Slice length, or None to process each video whole.
        overlap_s: Warm-up before each slice.
        ray_address: A Ray cluster to connect to, or None to start Ray locally.
        workers: Most items processed at once, or None for as many as the cluster's resources allow.
        num_cpus: CPUs reserved per item.
        num_gpus: GPUs reserved per item (fractions share a GPU).
        retries: Further attempts for an item that failed for a reason other than bad input.
        progress: Show a progress bar.
    """

    pattern: str
    output: str
    config: Config
    split_s: Fraction | None = None
    overlap_s: Fraction = Fraction(5)
    ray_address: str | None = None
    workers: int | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    retries: int = 2
    progress: bool = True

    def fingerprint(self) -> str:
        """A digest of every setting that changes an item's results (not where inputs and outputs are)."""
        split = [str(self.split_s), str(self.overlap_s)] if self.split_s else None
        # output.overwrite: how a folder is reused, not what its items hold
        return self.config.digest(["source.path", "output.dir", "output.overwrite"], {"split": split})


@dataclass
class BatchReport:
    """The outcome of a batch: every video's status, and what this run did.

    Attributes:
        outcomes: One per input video, in relative-path order.
        items_finished: Items that finished (done or finally failed) in this run.
        frames: Frames counted by the items finished in this run.
        wall_s: This run's wall time.
        interrupted: The driver was stopped (Ctrl-C / SIGTERM) before the end.
        summary_files: Where ``batch_summary.csv`` and ``.json`` were written.
    """

    outcomes: list[VideoOutcome] = field(default_factory=list)
    items_finished: int = 0
    frames: int = 0
    wall_s: float = 0.0
    interrupted: bool = False
    summary_files: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[VideoOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def truncated(self) -> list[VideoOutcome]:
        return [o for o in self.outcomes if o.status == "truncated"]

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0


def _ray_error(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _check_distinct_folders(videos: Sequence[str]) -> None:
    """Two inputs differing only in their suffix (``a.mp4``, ``a.mkv``) would share an output folder."""
    seen: dict[str, str] = {}
    for video in videos:
        folder = video_folder(video)
        if folder in seen:
            raise SourceError(f"{seen[folder]} and {video} would share the output folder {folder}/; rename one")
        seen[folder] = video


class WorkPlanner:
    """What is left of a batch: the items the manifest does not record as finished, and the
    videos still to probe for ``--split`` (no cached plan).

    Args:
        request: The batch.
        manifest: The output folder's manifest.
        folder: The output folder.
        fingerprint: :meth:`BatchRequest.fingerprint` of ``request``.
    """

    def __init__(self, request: BatchRequest, manifest: Manifest, folder: OutputFolder, fingerprint: str) -> None:
        self.request = request
        self.manifest = manifest
        self.folder = folder
        self.fingerprint = fingerprint

    def item_task(self, video: InputFile, part: SliceSpec | None) -> ItemTask:
        folder = video_folder(video.relative)
        output = self.folder.join(folder if part is None else f"{folder}/{part.name}")
        threads = max(1, int(self.request.num_cpus))
        return ItemTask(item_id(video.relative, part), video, output, self.request.config, part, threads)

    def unfinished(self, video: InputFile, parts: Sequence[SliceSpec | None]) -> list[ItemTask]:
        return [
            self.item_task(video, part)
            for part in parts
            if self.manifest.finished(item_id(video.relative, part), video.identity, self.fingerprint) is None
        ]

    def plan(self, videos: Iterable[InputFile]) -> tuple[list[ItemTask], list[InputFile]]:
        """Items still to run, and videos still to probe."""
        items, probes = [], []
        for video in videos:
            if self.request.split_s is None:
                items += self.unfinished(video, [None])
                continue
            plan = self.manifest.plan(video.relative, video.identity, self.fingerprint)
            if plan is None:
                probes.append(video)
            else:
                items += self.unfinished(video, [SliceSpec.from_record(s) for s in plan.slices])
        return items, probes


def batch_header(request: BatchRequest, location: str, fingerprint: str, report: BatchReport) -> dict[str, Any]:
    """The part of ``batch_summary.json`` that describes the batch and this run of it."""
    return {
        "pattern": request.pattern,
        "output": location,
        "config": request.config.origin,
        "split": format_duration(request.split_s) if request.split_s else None,
        "overlap": format_duration(request.overlap_s) if request.split_s else None,
        "fingerprint": fingerprint,
        "run": {
            "wall_s": round(report.wall_s, 2),
            "items_finished": report.items_finished,
            "frames": report.frames,
            "frames_per_s": round(report.frames_per_s, 2),
            "interrupted": report.interrupted,
        },
    }


class BatchProgress:
    """The batch's progress bar: items done, frames per second and failures so far.

    Args:
        enabled: Show it (``--quiet`` does not).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()
        self._bar: tqdm | None = None
        self._failed = 0

    def start(self, items: int) -> None:
        self._bar = tqdm(total=items, unit="item", disable=not self.enabled, dynamic_ncols=True, desc="batch")

    def add(self, items: int) -> None:
        """More items became known (a video's slices, once it was probed)."""
        if self._bar is not None:
            self._bar.total += items
            self._bar.refresh()

    def finished(self, record: ItemRecord, frames: int, advance: bool) -> None:
        """An item ended; ``frames``: counted so far in this run; ``advance``: the item is one of the bar's."""
        if self._bar is None:
            return
        self._failed += record.status == "failed"
        rate = frames / (time.perf_counter() - self.started)
        self._bar.set_postfix_str(f"{rate:.1f} frames/s, {self._failed} failed", refresh=False)
        if advance:
            self._bar.update()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class RetryBudget:
    """Attempts per task, and whether a failed one gets another.

    Example:
        >>> budget = RetryBudget(retries=1)
        >>> [budget.charge(("item", "a"), retryable=True) for _ in range(3)], budget.count(("item", "a"))
        ([True, False, False], 3)
    """

    def __init__(self, retries: int) -> None:
        self.retries = retries
        self._attempts: dict[TaskKey, int] = {}

    def charge(self, key: TaskKey, retryable: bool) -> bool:
        """Count a failed attempt; whether another one is due."""
        self._attempts[key] = self._attempts.get(key, 0) + 1
        return retryable and self._attempts[key] <= self.retries

    def count(self, key: TaskKey) -> int:
        return self._attempts.get(key, 0)


class BatchJob:
    """Runs one :class:`BatchRequest` on ``ray``, the Ray module (:func:`pipeline.batch.scheduler.import_ray`),
    which is started only if there is work."""

    _manifest: Manifest
    _planner: WorkPlanner
    _outcomes: Outcomes
    _pool: TaskPool
    _process: Any  # process_item as a Ray task
    _probe: Any  # plan_video as a Ray task

    def __init__(self, request: BatchRequest, ray: ModuleType) -> None:
        self.request = request
        self._ray = ray
        self._fingerprint = request.fingerprint()
        self._folder = OutputFolder(request.output)
        self._inputs: dict[str, InputFile] = {}
        self._tasks: dict[str, ItemTask] = {}
        self._attempts = RetryBudget(request.retries)
        self._progress = BatchProgress(request.progress)
        self._report = BatchReport()

    def run(self) -> BatchReport:
        """Process every unfinished item and write the summaries.

        Raises:
            PipelineError: No inputs, two inputs that would share an output folder, or Ray
                cannot be started or reached.
        """
        self._inputs = {v.relative: v for v in list_inputs(self.request.pattern, exclude=self.request.output)}
        _check_distinct_folders(list(self._inputs))
        self._manifest = Manifest(self._folder)
        self._outcomes = Outcomes(self._manifest, self._folder, self._fingerprint, self.request.split_s is not None)
        self._planner = WorkPlanner(self.request, self._manifest, self._folder, self._fingerprint)
        try:
            items, probes = self._planner.plan(self._inputs.values())
            if items or probes:
                with RaySession(self._ray, self.request.ray_address) as session:
                    self._execute(session, items, probes)
        except KeyboardInterrupt:
            self._report.interrupted = True
        finally:
            self._progress.close()
            self._manifest.close()
        if self.request.split_s is not None:
            for video in self._inputs.values():  # e.g. the driver was killed between a last slice and its summary
                self._outcomes.write_video_summary(video, missing_only=True)
        self._report.wall_s = time.perf_counter() - self._progress.started
        header = batch_header(self.request, self._folder.location, self._fingerprint, self._report)
        self._report.outcomes = self._outcomes.write_batch_summaries(self._inputs.values(), header)
        self._report.summary_files = [self._folder.join(SUMMARY_CSV), self._folder.join(SUMMARY_JSON)]
        return self._report

    def _execute(self, session: RaySession, items: list[ItemTask], probes: list[InputFile]) -> None:
        request = self.request
        self._process = session.remote(process_item, request.num_cpus, request.num_gpus)
        self._probe = session.remote(plan_video, num_cpus=min(1.0, request.num_cpus))
        self._pool = TaskPool(self._ray, request.workers)
        self._progress.start(len(items))
        for task in items:
            self._submit_item(task)
        for video in probes:
            self._submit_probe(video)
        while self._pool:
            for (kind, name), value in self._pool.wait(timeout_s=1.0):
                if kind == "plan":
                    self._on_plan(self._inputs[name], value)
                else:
                    self._on_item(self._tasks[name], value)

    def _submit_item(self, task: ItemTask) -> None:
        self._tasks[task.id] = task
        self._pool.submit(("item", task.id), self._process, task)

    def _submit_probe(self, video: InputFile) -> None:
        request = self.request
        max_frames = request.config.source.max_frames
        self._pool.submit(("plan", video.relative), self._probe, video, request.split_s, request.overlap_s, max_frames)

    def _on_plan(self, video: InputFile, value: PlanResult | BaseException) -> None:
        if not isinstance(value, PlanResult):  # the worker or its node was lost
            value = PlanResult(video.relative, error=_ray_error(value), retryable=True)
        if value.error is not None:
            if self._attempts.charge(("plan", video.relative), value.retryable):
                self._submit_probe(video)
            else:
                attempts = self._attempts.count(("plan", video.relative))
                self._finish(
                    ItemRecord(
                        video.relative,
                        video.relative,
                        None,
                        "failed",
                        video.identity,
                        self._fingerprint,
                        attempts,
                        error=value.error,
                    )
                )
            return
        slices = [s.to_record() for s in value.slices]
        self._manifest.add(PlanRecord(video.relative, video.identity, self._fingerprint, value.frames, slices))
        tasks = self._planner.unfinished(video, list(value.slices))
        self._progress.add(len(tasks))
        for task in tasks:
            self._submit_item(task)

    def _on_item(self, task: ItemTask, value: ItemResult | BaseException) -> None:
        if not isinstance(value, ItemResult):  # the worker or its node was lost
            value = ItemResult(task.id, "failed", error=_ray_error(value), retryable=True)
        done = value.status in DONE_STATUSES
        if not done and self._attempts.charge(("item", task.id), value.retryable):
            self._submit_item(task)
            return
        attempts = self._attempts.count(("item", task.id)) + done
        part = task.part.index if task.part is not None else None
        self._report.frames += value.frames
        summary = value.summary.to_json() if value.summary is not None else None  # the manifest holds JSON
        self._finish(
            ItemRecord(
                task.id,
                task.input.relative,
                part,
                value.status,
                task.input.identity,
                self._fingerprint,
                attempts,
                value.error,
                round(value.elapsed_s, 3),
                summary,
                value.started_at,
            )
        )
        if task.part is not None:
            self._outcomes.write_video_summary(task.input)

    def _finish(self, record: ItemRecord) -> None:
        """Record an item's end in the manifest (durably, at once) and advance the progress bar."""
        self._manifest.add(record)
        self._report.items_finished += 1
        self._progress.finished(record, self._report.frames, record.part is not None or self.request.split_s is None)
