"""Worker processes: the sources of a list spread over several processes, so throughput grows with
cores past what one process (and its GIL) carries.

Each worker runs :func:`~pipeline.run.runner.run_group` on its share of the list, with a model of its
own or, with ``source.shared_inference``, the model of the shared inference stage, a process of its
own that batches every worker's frames (:mod:`pipeline.run.inference_stage`), and sends back what
came of it (:class:`~pipeline.run.fleet.GroupResult`). The parent decides
every source's name before any worker starts (so no two pick one folder), shows the one progress bar,
passes Ctrl-C and SIGTERM on, and writes the list's overview from the workers' results.

Signals: a Ctrl-C in a terminal reaches the parent and every worker at once (one process group); the
parent passes a SIGTERM sent to it alone on, with a stop flag that a worker still starting (when it
ignores signals, so that one neither kills it nor breaks its imports) reads once its handler is in
place. The first signal stops a worker as Ctrl-C stops a run (its outputs finalized, status
``interrupted``); later ones are ignored so they cannot cut that short.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Literal

from tqdm import tqdm

from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.io.urls import mask_credentials
from pipeline.run.fleet import GroupResult, NothingOpened, SourceGroup
from pipeline.run.inference_stage import PROCESS_NAME, serve, shares_inference
from pipeline.runtime import configure_output

WorkerSetting = int | Literal["auto"]

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}

POLL_S = 0.2
"""How often the parent updates the bar while it waits for the workers."""

STAGE_END_S = 30.0
"""How long the shared inference stage may take to end once every worker has (it ends when they do)."""


def worker_count(setting: WorkerSetting, sources: int, cpus: int | None = None) -> int:
    """How many worker processes run ``sources`` sources: ``setting``, or for ``auto`` one per two
    cores, never more than there are sources (1: the sources run in this process).

    Example:
        >>> worker_count(4, 3), worker_count("auto", 20, cpus=16), worker_count("auto", 4, cpus=2)
        (3, 8, 1)
    """
    if setting == "auto":
        setting = (cpus or len(os.sched_getaffinity(0))) // 2
    return max(1, min(setting, sources))


def check_workers(config: Config, sources: int, live_view: bool) -> int:
    """The worker processes for ``sources`` sources (see :func:`worker_count`), checked against the run:
    a live view (``--serve``, ``--show``) shows the frames of this process only.

    Raises:
        ConfigError: More than one worker with a live view.
    """
    count = worker_count(config.source.workers, sources)
    if count > 1 and live_view:
        raise config.error("source.workers", "a live view (--serve, --show) needs every source in one process (1)")
    return count


UNKNOWN = -2
"""A worker's expected frames when some of its sources have no end (live) or have not opened yet."""


class SharedTally:
    """A worker's progress bar: the frames it processed and expects, in shared memory the parent's
    bar reads (written by this worker only: no lock, so nothing for the parent to clean up).

    Args:
        count: The frames processed (a shared ``q`` value).
        expected: The frames expected in all (-1 until known, :data:`UNKNOWN` if never).
    """

    def __init__(self, count: Any, expected: Any) -> None:
        self._count, self._expected = count, expected

    def update(self, n: int = 1) -> None:
        self._count.value += n

    def expect(self, total: int | None) -> None:
        self._expected.value = UNKNOWN if total is None else total


def run_in_workers(
    config: Config,
    groups: Sequence[SourceGroup],
    run_id: str,
    progress: bool,
    run_group: Callable[..., GroupResult],
) -> GroupResult:
    """Run each group of sources in a worker process of its own (``run_group`` runs one) and merge
    what came of them; ``progress``: show the progress bar (without it the workers print only errors).

    Raises:
        NothingOpened: No source of any group opened.
        PipelineError: A worker met a config or model error (the others are stopped first: their
            outputs are finalized as ``interrupted``).
        KeyboardInterrupt: Interrupted before any worker started a run.
    """
    context = multiprocessing.get_context("spawn")  # a fork would copy the parent's threads' locks
    tallies = [(context.RawValue("q", 0), context.RawValue("q", -1)) for _ in groups]
    cpus = max(1, len(os.sched_getaffinity(0)) // len(groups))
    stop = context.RawValue("b", 0)
    workers: list[tuple[BaseProcess, Connection]] = []
    stage: BaseProcess | None = None
    inference: list[Connection | None] = [None] * len(groups)
    try:
        if shares_inference(config, len(groups)):
            stage, inference = _start_stage(context, config, len(groups), progress)  # type: ignore[assignment]
        for group, end in zip(groups, inference, strict=True):
            receiver, sender = context.Pipe(duplex=False)
            tally = tallies[len(workers)]
            args = (run_group, config, replace(group, cpus=cpus), run_id, not progress, tally, stop, sender, end)
            process = context.Process(target=_work, args=args, name=f"vpipe-worker-{len(workers) + 1}")
            _start_ignoring_stops(process)
            sender.close()  # the worker holds the other end: its end of file says it ended
            if end is not None:
                end.close()  # and of this one: its end of file tells the stage
            workers.append((process, receiver))
    except BaseException:  # Ctrl-C while starting them: none has started a run yet
        for process, _ in workers:
            process.kill()
        if stage is not None:
            stage.kill()
        raise
    replies: dict[int, tuple] = {}
    try:
        with tqdm(unit="frame", disable=not progress, dynamic_ncols=True) as bar:
            try:
                _collect(workers, replies, tallies, stop, bar)
            except KeyboardInterrupt:
                previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}  # let them finish
                try:
                    _stop(workers, stop)  # they got a Ctrl-C from a terminal too, not a SIGTERM sent to this process
                    _collect(workers, replies, tallies, stop, bar)
                finally:
                    for sig, handler in previous.items():
                        signal.signal(sig, handler)
    finally:
        if stage is not None:
            _end_stage(stage)
    return _merge(replies, groups)


def _start_stage(context: Any, config: Config, workers: int, progress: bool) -> tuple[BaseProcess, list[Connection]]:
    """Start the shared inference stage; its process and the workers' ends of their pipes to it."""
    pipes = [context.Pipe() for _ in range(workers)]
    stage_ends = [stage_end for _, stage_end in pipes]
    stage = context.Process(target=serve, args=(config, stage_ends, not progress), name=PROCESS_NAME)
    _start_ignoring_stops(stage)  # and it keeps ignoring them: it serves the workers to their end
    for stage_end in stage_ends:
        stage_end.close()
    return stage, [worker_end for worker_end, _ in pipes]


def _end_stage(stage: BaseProcess) -> None:
    """Wait for the shared inference stage, which ends once every worker has; kill it if it hangs."""
    stage.join(STAGE_END_S)
    if stage.is_alive():
        stage.kill()
        stage.join()


def _start_ignoring_stops(process: BaseProcess) -> None:
    """Start ``process`` with SIGINT and SIGTERM ignored, which it inherits: until its handler is in
    place, a signal neither kills it nor interrupts its imports (see :func:`_stop`). A signal to this
    process in the instant of the start is missed."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        process.start()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(workers: Sequence[tuple[BaseProcess, Connection]], stop: Any) -> None:
    """Stop every worker still running (each finalizes its outputs as ``interrupted``): the flag first,
    which a worker still starting (ignoring signals) reads once its handler is in place."""
    stop.value = 1
    for process, _ in workers:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)


def _collect(
    workers: Sequence[tuple[BaseProcess, Connection]],
    replies: dict[int, tuple],
    tallies: Sequence[tuple[Any, Any]],
    stop: Any,
    bar: tqdm,
) -> None:
    """Each worker's reply into ``replies`` (by worker), until all have ended; updates the bar
    meanwhile (its total once every worker knows its own). A worker's error stops the others: the
    run ends with it."""
    open_ends = {receiver: index for index, (_, receiver) in enumerate(workers) if index not in replies}
    while open_ends:
        for receiver in wait(list(open_ends), timeout=POLL_S):
            index = open_ends.pop(receiver)  # type: ignore[call-overload]
            try:
                replies[index] = receiver.recv()
            except EOFError:  # ended without a reply
                workers[index][0].join()
                replies[index] = ("crashed", f"worker {index + 1} ended with exit code {workers[index][0].exitcode}")
            if replies[index][0] in ("error", "crashed"):
                _stop(workers, stop)
        expected = [expected.value for _, expected in tallies]
        if bar.total is None and min(expected) >= 0:
            bar.total = sum(expected)
        bar.update(sum(count.value for count, _ in tallies) - bar.n)
    for process, _ in workers:
        process.join()


def _merge(replies: dict[int, tuple], groups: Sequence[SourceGroup]) -> GroupResult:
    """The workers' results as one; a worker's error is the run's (raised once every worker ended)."""
    results: list[GroupResult] = []
    for index, group in enumerate(groups):
        kind, payload, *rest = replies[index]
        if kind == "crashed":
            raise RuntimeError(payload)
        if kind == "error":
            error = PipelineError(payload)
            error.exit_code = rest[0]
            raise error
        if kind == "unopened":
            results.append(GroupResult(failed=payload))
        elif kind == "interrupted":  # before its run started: its sources did not run
            failed = {
                position: f"{mask_credentials(spec)}: interrupted before it started"
                for position, spec in zip(group.positions, group.specs, strict=True)
            }
            results.append(GroupResult(failed=failed))
        else:
            results.append(payload)
    if all(replies[index][0] == "interrupted" for index in range(len(groups))):
        raise KeyboardInterrupt  # before any run started, as in one process
    merged = GroupResult.merge(results)
    if not merged.summaries and not merged.pending:
        raise NothingOpened(merged.failed)
    return merged


def _stop_once(signum: int, frame: object) -> None:
    for sig in STOP_SIGNALS:  # from now on: finalizing must not be cut short
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def _work(
    run_group: Callable[..., GroupResult],
    config: Config,
    group: SourceGroup,
    run_id: str,
    quiet: bool,
    tally: tuple[Any, Any],
    stop: Any,
    reply: Connection,
    inference: Connection | None = None,
) -> None:
    """A worker process: run ``group`` (with the shared inference stage's model through ``inference``,
    if given) and send back what came of it."""
    configure_output(quiet=quiet)
    message: tuple
    try:
        for sig in STOP_SIGNALS:
            signal.signal(sig, _stop_once)
        if stop.value:  # stopped while it started, ignoring signals
            raise KeyboardInterrupt
        message = ("result", run_group(config, group, run_id, SharedTally(*tally), inference=inference))
    except NothingOpened as exc:
        message = ("unopened", exc.failed)
    except PipelineError as exc:
        message = ("error", str(exc), exc.exit_code)
    except KeyboardInterrupt:
        message = ("interrupted", None)
    except BaseException:
        traceback.print_exc()
        message = ("crashed", f"{multiprocessing.current_process().name} failed (see the traceback above)")
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if inference is not None:
        inference.close()  # the stage need not wait for this process's exit to know it has gone
    reply.send(message)
    reply.close()
