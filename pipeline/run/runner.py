"""Wires the stages together and runs them over one or several sources.

``source -> Detector -> FramePipeline (ByteTrack, analytics) -> RunOutputs (drawing, sinks)``

Each source is read on its own thread into a small bounded queue (keeping only the newest frames
for live feeds); a detection thread batches the frames of all sources into one inference call,
while the main thread has each source's :class:`SourceRun` step its
:class:`~pipeline.run.frame_pipeline.FramePipeline` and write its :class:`~pipeline.io.outputs.run_outputs.RunOutputs`
for the previous batch; drawing and H.264 encoding run on one more thread per source, with a
frozen snapshot of that frame's counts. Sources are opened side by side
(:class:`~pipeline.run.opening.SourceOpener`) and kept by a :class:`~pipeline.run.fleet.Fleet`: a slow or
dead camera does not stall the others, and one that connects late joins the run then.

Everything that can fail on bad input (config, source, model, geometry) is checked before the
output folders are touched; once running, every sink flushes per frame and is closed on any exit,
Ctrl-C included, and ``summary.json`` is always written with the run's status.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path

from tqdm import tqdm

from pipeline.analytics.parking import model_for_parking
from pipeline.concurrency import PrefetchIterator
from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.io.outputs.records import new_run_id
from pipeline.io.outputs.run_outputs import FrameViewer
from pipeline.io.publish.publisher import Publisher
from pipeline.io.sources.files import Frame, FrameSource
from pipeline.models import Detector
from pipeline.models.remote import SharedDetector, connect
from pipeline.run.detection_stage import Detected, DetectionStage, Ended, Failed
from pipeline.run.fleet import (
    Fleet,
    GroupResult,
    NothingOpened,
    SourceGroup,
    open_spec,
    release,
    write_overview,
)
from pipeline.run.opening import SourceOpener
from pipeline.run.source_run import SourceRun
from pipeline.run.summary import RunSummary
from pipeline.run.workers import SharedTally, check_workers, run_in_workers
from pipeline.runtime import set_torch_threads
from pipeline.stopping import stop_gracefully_from_now
from pipeline.store import check_store, store_target

log = logging.getLogger(__name__)


def run_sources(
    config: Config, specs: Sequence[str], progress: bool = True, viewers: Sequence[FrameViewer] = ()
) -> list[RunSummary]:
    """Process several sources with one model: frames are batched across sources for inference.

    With one source its outputs go to ``output.dir`` (default ``runs/<source name>``); with several,
    to ``<output.dir or runs/streams>/<source name>/``, and ``summary.json`` there lists every
    source's status. Sources are opened side by side (see :class:`SourceOpener`): one that cannot
    connect retries, or gives up, on its own while the others run. With ``source.workers`` above 1
    the sources are spread over that many worker processes (see :mod:`pipeline.run.workers`), each
    running :func:`run_group` on its share with a model of its own.

    Returns:
        One summary per source that ran, as written to their ``summary.json``.

    Raises:
        PipelineError: Invalid input (before anything is written: every source failed to open, a
            config or model error; with workers, one worker's such error stops the others, whose
            outputs are finalized as ``interrupted``).
        SourcesFailed: A source failed to open or failed mid-run while others ran (after every
            output is finalized; the other sources run to their end).
    """
    if not specs:
        raise config.error("source.path", "no source given (pass SOURCE on the command line)")
    whole = SourceGroup.whole(specs)
    run_id = new_run_id()  # this run's: in every record of every source
    groups = whole.split(check_workers(config, len(specs), live_view=bool(viewers)))
    Publisher.check_sources(config, len(specs))
    if len(groups) > 1:
        stop_gracefully_from_now()  # the workers' own start-up ignores stops (see pipeline.run.workers)
        result = run_in_workers(config, groups, run_id, progress, run_group)
    else:
        result = run_group(config, whole, run_id, progress, viewers)
    write_overview(Fleet.base_of(config), specs, result, run_id)
    return result.outcome(specs)


def run_group(
    config: Config,
    group: SourceGroup,
    run_id: str,
    progress: bool | SharedTally = True,
    viewers: Sequence[FrameViewer] = (),
    inference: Connection | None = None,
) -> GroupResult:
    """Process a group of sources of a list (all of them, or a worker process's share) with one model.

    Args:
        config: The run config.
        group: The sources.
        run_id: The run's id, in every record of every source.
        progress: Show a progress bar on stderr, or count the frames into a worker's tally.
        viewers: Live views to publish annotated frames to.
        inference: A worker's pipe to the shared inference stage, whose model it runs with
            (:mod:`pipeline.run.inference_stage`); None: a model of its own.

    Returns:
        How each source went; nothing of the list's overview is written.

    Raises:
        NothingOpened: Every source of the group failed to open (before anything is written).
        PipelineError: A config or model error (before anything is written).
    """
    normalized = config.coordinates == "normalized"  # geometry that can follow a change of resolution
    detector: Detector | None = None

    def start_run(source: FrameSource, source_config: Config, out_dir: Path) -> SourceRun:
        assert detector is not None
        store = store_target(config.output.store, out_dir if fleet.single else fleet.base)
        return SourceRun(source_config, source, detector, out_dir, viewers, normalized, store=store, run_id=run_id)

    fleet = Fleet(config, group, start_run)
    specs = group.specs
    Publisher.check(config)
    check_store(config.output.store)
    with ExitStack() as stack:
        opener = stack.enter_context(SourceOpener(specs, lambda spec, stop: open_spec(config, spec, stop)))
        opened: list[tuple[int, FrameSource, PrefetchIterator[Frame] | None]] = []
        stack.callback(lambda: [release(s, r) for _, s, r in opened[len(fleet.runs) :]])  # an error before runs
        for index, outcome in opener.wait_for_start(grace_s=config.source.stall_timeout_s):
            if isinstance(outcome, PipelineError):
                fleet.failures[index] = str(outcome)
            else:  # timed as read: read now, not once the model has loaded
                opened.append((index, outcome, fleet.read(outcome) if outcome.read_clock else None))
        if not opened:
            raise NothingOpened({group.positions[index]: error for index, error in fleet.failures.items()})
        source_configs = fleet.prepare([source for _, source, _ in opened])
        # checked before the model loads
        out_dirs = [fleet.place(i, source, c) for (i, source, _), c in zip(opened, source_configs, strict=True)]
        largest = max((source for _, source, _ in opened), key=lambda s: s.width * s.height)
        frame_size = (largest.width, largest.height)
        detector = _detector(config, group, frame_size, inference)
        if isinstance(detector, SharedDetector):
            stack.callback(detector.close)  # its shared memory, on every way out
        set_torch_threads(detector.backend, cpus=group.cpus)
        stop_gracefully_from_now()  # the outputs are opened next: a stop finalizes them from here on
        for (index, source, reader), source_config, out_dir in zip(opened, source_configs, out_dirs, strict=True):
            fleet.add(index, reader, source, source_config, out_dir)
        stack.callback(fleet.finish, "failed")  # an unexpected error: outputs still finalized

        sources = [run.source for run in fleet.runs]
        known = not opener.pending and all(s.frame_count for s in sources)
        total = sum(s.frame_count or 0 for s in sources) if known else None
        if isinstance(progress, bool):
            bar: tqdm | SharedTally = stack.enter_context(
                tqdm(total=total, unit="frame", disable=not progress, dynamic_ncols=True)
            )
        else:
            bar = progress
            bar.expect(total)
        try:
            _loop(fleet, opener, detector, bar)
        except KeyboardInterrupt:
            fleet.finish("interrupted")
        else:
            fleet.finish("completed")
        return fleet.result(opener.pending)


def _detector(
    config: Config, group: SourceGroup, frame_size: tuple[int, int], inference: Connection | None
) -> Detector:
    """The group's model, for its largest frame: the shared stage's, or its own."""
    if inference is not None:
        return connect(inference, config.model, frame_size)
    model = model_for_parking(config.model, config.parking, frame_size)
    if group.cpus and not model.inference_threads:  # a worker's share of the cores
        model = replace(model, inference_threads=group.cpus)
    origin = config.flags.get("model.classes", config.origin)
    return Detector(model, frame_size=frame_size, origin=origin, pipelined=True)


def _loop(fleet: Fleet, opener: SourceOpener, detector: Detector, bar: tqdm | SharedTally) -> None:
    """Until every source ends: detection batches come from their own thread; track, count, write."""
    stage = DetectionStage(fleet.readers, fleet.runs, detector, expected=len(opener.pending))
    batches = PrefetchIterator(stage, maxsize=2)
    try:
        for batch in batches:
            fleet.admit(opener.take(), stage)
            for record in batch:
                if not fleet.runs[record.index].finished:
                    _take(fleet, stage, record)
            for run in fleet.runs:  # connection events are written as they happen, frames or not
                if not run.finished:
                    run.record_source_events(run.source.drain_events())
            bar.update(sum(isinstance(record, Detected) for record in batch))
    finally:
        stage.close()
        batches.close()


def _take(fleet: Fleet, stage: DetectionStage, record: Detected | Ended | Failed) -> None:
    """One record of a detection batch: a frame to process, or its source's end or failure."""
    index, max_frames = record.index, fleet.config.source.max_frames
    run = fleet.runs[index]
    try:
        match record:
            case Failed(error=error):
                raise error
            case Ended():  # its outputs are complete now, whatever the others do
                fleet.end(index)
                return
            case Detected(frame=frame, detections=detections, held=held):
                run.record_source_events(run.source.drain_events(), frame.frame_index)
                run.process(frame, detections, frames_dropped=fleet.readers[index].dropped, held=held)
    except PipelineError as exc:
        fleet.failures[fleet.spec_of(index)] = str(exc)
        run.source.stop()
        fleet.end(index, "failed", str(exc))
        stage.stop_source(index)
        return
    if max_frames is not None and run.summary.frames >= max_frames:  # frames processed
        run.source.stop()
        fleet.end(index)
        stage.stop_source(index)


def run(config: Config, progress: bool = True, viewers: Sequence[FrameViewer] = ()) -> RunSummary:
    """Process ``config.source.path`` end to end and write the outputs.

    Args:
        config: A validated run config; ``source.path`` must be set.
        progress: Show a progress bar (frames, FPS, ETA) on stderr.
        viewers: Live views (``--serve``, ``--show``) to publish annotated frames to.

    Returns:
        The run summary, as written to ``summary.json``. ``status`` is ``completed`` or
        ``interrupted`` (Ctrl-C / SIGTERM; outputs are valid up to the last frame).

    Raises:
        PipelineError: Invalid input, found before any output is written, or a source that fails
            mid-run (outputs are finalized first).
    """
    if not config.source.path:
        raise config.error("source.path", "no source given (pass SOURCE on the command line)")
    return run_sources(config, [config.source.path], progress=progress, viewers=viewers)[0]
