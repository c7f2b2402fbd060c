"""The sources of one run: each one's reader and :class:`~pipeline.run.source_run.SourceRun`, added as it
opens, ended as it ends; the share of a source list one process runs (:class:`SourceGroup`), what
came of it (:class:`GroupResult`), and the overview of how each source went (``summary.json`` of a
``.streams`` run)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.concurrency import PrefetchIterator
from pipeline.config import Config
from pipeline.errors import PipelineError, SourceError
from pipeline.io.outputs.folders import check_output_dir
from pipeline.io.outputs.records import utc_text
from pipeline.io.outputs.run_folder import run_identity
from pipeline.io.outputs.sinks import write_json_atomic
from pipeline.io.sources.files import Frame, FrameSource, is_live_spec, open_source, source_name
from pipeline.io.sources.frames import sample_every
from pipeline.io.urls import mask_credentials
from pipeline.run.detection_stage import DetectionStage
from pipeline.run.opening import Outcome

if TYPE_CHECKING:  # the runner builds on this module
    from pipeline.run.source_run import SourceRun
    from pipeline.run.summary import RunSummary


STOP_WAIT_S = 1.0
"""How long shutting down waits for a source's reading thread (one blocked in a network read is left
to end with the process)."""


class SourcesFailed(SourceError):
    """Some sources failed (the others ran to their end): exit code 3, or 2 if none ran at all."""

    def __init__(self, failures: Sequence[str], summaries: Sequence[RunSummary]) -> None:
        super().__init__("; ".join(failures))
        self.summaries = list(summaries)
        self.exit_code = 3 if summaries else 2


def unique_name(name: str, taken: list[str]) -> str:
    """``name``, or ``name_2``, ``name_3``, ... if taken; recorded as taken.

    Example:
        >>> taken = ["cam"]
        >>> unique_name("cam", taken), unique_name("cam", taken), taken
        ('cam_2', 'cam_3', ['cam', 'cam_2', 'cam_3'])
    """
    unique, suffix = name, 2
    while unique in taken:
        unique, suffix = f"{name}_{suffix}", suffix + 1
    taken.append(unique)
    return unique


@dataclass(frozen=True)
class SourceGroup:
    """Sources of a list that one process runs: their specs, their positions in the whole list and
    their names, unique across the whole list (``clip``, ``clip_2``, ... in list order), so processes
    that run parts of one list never pick the same folder.

    Example:
        >>> whole = SourceGroup.whole(["a/clip.mp4", "b/clip.mp4", "cam.mp4"])
        >>> whole.names, [(g.positions, g.names) for g in whole.split(2)]
        (['clip', 'clip_2', 'cam'], [([0, 2], ['clip', 'cam']), ([1], ['clip_2'])])
    """

    specs: list[str]
    positions: list[int]
    names: list[str]
    list_size: int
    """How many sources the whole list has: with more than one, each writes into a subfolder."""
    cpus: int | None = None
    """The CPUs the group's process may use (None: every one), for the model's threads."""

    @classmethod
    def whole(cls, specs: Sequence[str]) -> SourceGroup:
        """Every source of the list, named in list order."""
        taken: list[str] = []
        names = [unique_name(source_name(spec), taken) for spec in specs]
        return cls(list(specs), list(range(len(specs))), names, len(specs))

    def split(self, count: int) -> list[SourceGroup]:
        """``count`` groups (fewer if there are fewer sources), the sources dealt round-robin."""
        count = min(count, len(self.specs))
        return [
            SourceGroup(self.specs[k::count], self.positions[k::count], self.names[k::count], self.list_size, self.cpus)
            for k in range(count)
        ]


@dataclass
class GroupResult:
    """How the sources of a group (or of several, merged) went, by position in the whole list."""

    summaries: list[tuple[int, RunSummary]] = field(default_factory=list)
    """Each source that ran and its summary, in the order they started."""
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    """The overview's entry of each source that ran."""
    failed: dict[int, str] = field(default_factory=dict)
    """Why each source that failed (to open or mid-run) failed."""
    pending: list[int] = field(default_factory=list)
    """Live sources that never connected."""

    @classmethod
    def merge(cls, results: Sequence[GroupResult]) -> GroupResult:
        """The results of the groups of one list as one: the summaries in list order."""
        merged = cls()
        for result in results:
            merged.summaries += result.summaries
            merged.entries.update(result.entries)
            merged.failed.update(result.failed)
            merged.pending += result.pending
        merged.summaries.sort(key=lambda item: item[0])
        merged.pending.sort()
        return merged

    def outcome(self, specs: Sequence[str]) -> list[RunSummary]:
        """The summaries of the sources that ran (``specs``: the whole list).

        Raises:
            SourcesFailed: Some sources failed or never connected.
        """
        summaries = [summary for _, summary in self.summaries]
        failures = [self.failed[position] for position in sorted(self.failed)]
        failures += [f"{mask_credentials(specs[position])}: never connected" for position in self.pending]
        if failures:
            raise SourcesFailed(failures, [s for s in summaries if s.status != "failed"])
        return summaries


class NothingOpened(SourceError):
    """No source of a group opened: every one failed (``failed``: why, by position in the whole list)."""

    def __init__(self, failed: dict[int, str]) -> None:
        super().__init__("; ".join(failed[position] for position in sorted(failed)))
        self.failed = failed


def open_spec(config: Config, spec: str, stop: threading.Event) -> FrameSource:
    """Open ``spec`` as the ``source`` section says; ``stop`` ends a live source's connection attempts."""
    # --max-frames counts processed frames: a live source must not count the ones dropped unread.
    max_frames = None if is_live_spec(spec) else config.source.max_frames
    return open_source(
        spec,
        fps=config.source.fps,
        max_frames=max_frames,
        stall_timeout_s=config.source.stall_timeout_s,
        max_reconnects=config.source.max_reconnects,
        stop_event=stop,
    )


def output_dir_for(config: Config, source: FrameSource) -> Path:
    """``output.dir`` if set, else ``runs/<source name>``."""
    return Path(config.output.dir) if config.output.dir else Path("runs") / source.name


def release(source: FrameSource, reader: PrefetchIterator[Frame] | None) -> None:
    """Stop reading ``source`` and close it, unless a read blocked in FFmpeg still uses it."""
    source.stop()
    if reader is None or reader.close(timeout_s=STOP_WAIT_S):
        source.close()


class Fleet:
    """The sources of a run and their :class:`SourceRun` and reader, added as each one opens.

    Args:
        config: The run config.
        group: The sources, as given (indices into ``group.specs`` are spec indices here).
        start_run: Makes the run of an opened source, given its config in its pixels and its folder.
    """

    def __init__(
        self, config: Config, group: SourceGroup, start_run: Callable[[FrameSource, Config, Path], SourceRun]
    ) -> None:
        self.config, self.group, self.specs, self._start_run = config, group, group.specs, start_run
        self.base = self.base_of(config)
        self.single = group.list_size == 1
        """Whether the list is one source (written to ``output.dir`` itself)."""
        self.runs: list[SourceRun] = []
        self.readers: list[PrefetchIterator[Frame]] = []
        self.failures: dict[int, str] = {}  # by spec index
        self.spec_of_run: list[int] = []
        self._finished = False

    @staticmethod
    def base_of(config: Config) -> Path:
        """Where a run of several sources writes (each in a subfolder)."""
        return Path(config.output.dir) if config.output.dir else Path("runs") / "streams"

    def prepare(self, sources: Sequence[FrameSource]) -> list[Config]:
        """Geometry in each source's pixels, checked; the first sources also size the model input."""
        configs = [self.config.in_pixels(s.width, s.height) for s in sources]
        for source_config, source in zip(configs, sources, strict=True):
            source_config.validate_geometry(source.width, source.height)
        return configs

    def read(self, source: FrameSource) -> PrefetchIterator[Frame]:
        """Start reading ``source`` on its own thread (at once: a live feed must not back up meanwhile)."""
        policy = self.config.source.read_policy
        latest = policy == "latest" or (policy == "auto" and source.live)
        interval_s = self.config.source.sample_every_s
        frames = sample_every(source, interval_s) if interval_s else source
        return PrefetchIterator(frames, maxsize=2 if latest else 4, drop_oldest=latest)

    def place(self, spec_index: int, source: FrameSource, source_config: Config) -> Path:
        """Give ``source`` (opened from spec ``spec_index``) its name, unique in the list; its output folder,
        checked as writable and free for this run (``source_config``: its config in its pixels, see
        :meth:`prepare`).

        Raises:
            PipelineError: The folder cannot be written.
            FolderTaken: A vpipe process writes it, or it holds another run (without ``--overwrite``).
        """
        source.name = self.group.names[spec_index]
        out_dir = output_dir_for(self.config, source) if self.single else self.base / source.name
        check_output_dir(out_dir, self.config.output.overwrite, run_identity(source_config, source))
        return out_dir

    def add(
        self,
        spec_index: int,
        reader: PrefetchIterator[Frame] | None,
        source: FrameSource,
        source_config: Config,
        out_dir: Path,
    ) -> int:
        """Process ``source``, read by ``reader`` (None: start reading it once its run has started),
        into ``out_dir``; returns its run index."""
        run = self._start_run(source, source_config, out_dir)  # if it fails, no reader thread uses the source
        self.runs.append(run)
        self.readers.append(reader or self.read(source))
        self.spec_of_run.append(spec_index)
        return len(self.runs) - 1

    def spec_of(self, run_index: int) -> int:
        """The position in the run's source list of run ``run_index``."""
        return self.spec_of_run[run_index]

    def admit(self, outcomes: Sequence[Outcome], stage: DetectionStage) -> None:
        """Sources that opened (or failed) mid-run: start them (or record why not)."""
        for spec_index, outcome in outcomes:
            try:
                if isinstance(outcome, PipelineError):
                    raise outcome
                source_config = self.prepare([outcome])[0]
                out_dir = self.place(spec_index, outcome, source_config)
                stage.add_source(self.add(spec_index, None, outcome, source_config, out_dir))
            except PipelineError as exc:
                self.failures[spec_index] = str(exc)
                stage.add_source(None)
                if not isinstance(outcome, PipelineError):
                    outcome.close()

    def stop(self) -> list[bool]:
        """Stop every source and its reader at once, waiting ``STOP_WAIT_S`` for them all; whether
        each reader has ended."""
        for run, reader in zip(self.runs, self.readers, strict=True):
            run.source.stop()
            reader.stop()
        deadline = time.monotonic() + STOP_WAIT_S
        return [reader.close(timeout_s=max(0.0, deadline - time.monotonic())) for reader in self.readers]

    def end(self, run_index: int, status: str = "completed", error: str | None = None) -> None:
        """Finish one run (``completed`` becomes ``truncated`` for a source that ended before its announced end)."""
        run, reader = self.runs[run_index], self.readers[run_index]
        status = "truncated" if status == "completed" and run.source.truncated else status
        run.finish(status, error, frames_dropped=reader.dropped)

    def finish(self, status: str) -> None:
        """Finish every run (those already finished keep their status) and release the sources; once.

        Ending on an error (``failed``), a stop signal meanwhile is ignored rather than cut the
        outputs short: a worker's parent stops every worker when one fails, and with a shared
        inference stage that has died they all fail at once."""
        if self._finished:
            return
        self._finished = True
        with _signals_ignored(status == "failed"):
            self._finish(status)

    def _finish(self, status: str) -> None:
        ended = self.stop()
        for index in range(len(self.runs)):
            self.end(index, status, "stopped by an error" if status == "failed" else None)
        for run, reader_ended in zip(self.runs, ended, strict=True):
            if reader_ended:  # else a read blocked in FFmpeg still uses it; it ends with the process
                run.source.close()

    def result(self, pending: set[int]) -> GroupResult:
        """How each source went, by its position in the whole list (``pending``: spec indices of
        live sources that never connected)."""
        position = self.group.positions
        result = GroupResult(pending=sorted(position[index] for index in pending))
        for run, spec_index in zip(self.runs, self.spec_of_run, strict=True):
            result.summaries.append((position[spec_index], run.summary))
            summary = run.summary
            entry = {"source": run.source.display_name, "status": summary.status, "output_dir": str(run.out_dir)}
            result.entries[position[spec_index]] = entry | ({"error": summary.error} if summary.error else {})
        result.failed = {position[index]: error for index, error in self.failures.items()}
        return result


def write_overview(base: Path, specs: Sequence[str], result: GroupResult, run_id: str) -> None:
    """With several sources (``specs``: the whole list), ``summary.json`` in the ``base`` folder: each
    source's status and folder, in list order."""
    if len(specs) == 1:
        return
    entries = dict(result.entries)
    for position, error in result.failed.items():
        if position in entries:  # failed mid-run: its summary says why
            continue
        entries[position] = {"source": mask_credentials(specs[position]), "status": "failed"}
        entries[position]["error"] = mask_credentials(error)
    for position in result.pending:
        entries[position] = {"source": mask_credentials(specs[position]), "status": "never_connected"}
    sources = [entries[position] for position in sorted(entries)]
    failed = sum(entry["status"] in ("failed", "never_connected") for entry in sources)
    base.mkdir(parents=True, exist_ok=True)
    overview = {"sources": sources, "sources_failed": failed, "run_id": run_id, "time_utc": utc_text(time.time())}
    write_json_atomic(base / "summary.json", overview)


@contextmanager
def _signals_ignored(ignore: bool) -> Iterator[None]:
    """SIGINT and SIGTERM ignored inside (where ``ignore`` and on the main thread, which handles them)."""
    if not ignore or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
