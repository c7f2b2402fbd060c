"""The shared inference stage: one process holds the model for every worker of a ``--workers N`` run
and batches the rounds the workers post into one ``runner.start`` call (so on a GPU the batched
torch runner sees every camera of the machine at once).

It is a process of its own, not the parent: the parent keeps drawing the progress bar and relaying
signals while the model's threads run apart from it, and a stage that dies (a crash, an
out-of-memory kill) ends as a process that every worker sees end, never as a half-alive thread.

Workers post frames through shared memory (:mod:`pipeline.models.remote` has the protocol and the
worker's side). The stage ignores SIGINT and SIGTERM: it serves until every worker has closed its
pipe, so a stopped worker's last rounds still get their detections while it finalizes its outputs.
A worker that dies is dropped; the others go on.
"""

from __future__ import annotations

import logging
import signal
import traceback
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from pipeline.analytics.parking import model_for_parking
from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.models import Detector, PendingDetections
from pipeline.models.remote import frame_views
from pipeline.runtime import configure_output, set_torch_threads

log = logging.getLogger(__name__)

PROCESS_NAME = "vpipe-inference"

WAIT_S = 0.05
"""How long the stage waits for a request when nothing is in flight (it wakes on one at once)."""


def shares_inference(config: Config, workers: int) -> bool:
    """Whether a run on ``workers`` worker processes (above 1) runs its model in one shared stage:
    ``source.shared_inference``, or for ``auto`` where the model runs on a CUDA GPU and detects (the
    stage batches every camera there; on a CPU a model per worker is faster, see docs/performance.md).

    Example:
        >>> config = Config()
        >>> config.source.shared_inference = True
        >>> shares_inference(config, 2), shares_inference(config, 1)
        (True, False)
    """
    setting = config.source.shared_inference
    if workers < 2 or setting is False:
        return False
    if setting is True:
        return True
    from pipeline.models import select_device  # torch's import, for auto only

    model = config.model
    on_gpu = model.backend in ("auto", "torch") and select_device(model.device).startswith("cuda")
    return on_gpu and model.task != "segment"


@dataclass
class _Worker:
    """A worker's end at the stage: its pipe and its slots' segments, attached by name."""

    connection: Connection
    slots: dict[int, shared_memory.SharedMemory] = field(default_factory=dict)

    def frames(self, slot: int, name: str, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
        memory = self.slots.get(slot)
        if memory is None or memory.name.lstrip("/") != name.lstrip("/"):  # a new slot, or one grown
            _detach(memory)
            memory = self.slots[slot] = shared_memory.SharedMemory(name)
        return frame_views(memory.buf, shapes)

    def send(self, message: tuple) -> bool:
        """Send ``message``; False if the worker is gone."""
        try:
            self.connection.send(message)
        except OSError:
            return False
        return True

    def close(self) -> None:
        for memory in self.slots.values():
            _detach(memory)
        self.slots.clear()
        self.connection.close()


def _detach(memory: shared_memory.SharedMemory | None) -> None:
    """Drop this process's mapping of a worker's segment (the worker unlinks it)."""
    if memory is not None:
        with suppress(BufferError):  # a view still held: the mapping goes with the process
            memory.close()


@dataclass
class _Round:
    """One ``runner.start`` call: the requests it answers, as (worker, request id, frames)."""

    requests: list[tuple[_Worker, int, int]]
    pending: PendingDetections | None
    error: str | None = None


def serve(config: Config, connections: Sequence[Connection], quiet: bool) -> None:
    """The stage process: wait for every worker's hello, load the model for the largest frame, then
    answer rounds until every worker has gone."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # the parent and the workers stop; the stage serves them
        signal.signal(sig, signal.SIG_IGN)
    configure_output(quiet=quiet)
    workers = [_Worker(connection) for connection in connections]
    sizes = _hellos(workers)
    if not workers:
        return
    try:
        detector = _load(config, sizes)
    except PipelineError as exc:
        for worker in workers:
            worker.send(("error", str(exc), exc.exit_code))
        return
    except BaseException:
        traceback.print_exc()
        for worker in workers:
            worker.send(("error", f"{PROCESS_NAME}: loading the model failed (see the traceback above)", 1))
        return
    described = {**detector.describe(), "shared_inference": {"process": PROCESS_NAME, "workers": len(workers)}}
    ready = ("ready", described, detector.names, detector.class_ids, detector.in_flight)
    workers = [worker for worker in workers if worker.send(ready)]
    _answer(detector, workers)


def _hellos(workers: list[_Worker]) -> list[tuple[int, int]]:
    """Each worker's largest frame; a worker that ends first (none of its sources opened, or an
    error) is dropped from ``workers``."""
    sizes: list[tuple[int, int]] = []
    waiting = {worker.connection: worker for worker in workers}
    while waiting:
        for connection in wait(list(waiting)):
            worker = waiting.pop(connection)  # type: ignore[call-overload]
            try:
                sizes.append(connection.recv()[1])  # type: ignore[union-attr]
            except (EOFError, OSError):
                workers.remove(worker)
                worker.close()
    return sizes


def _load(config: Config, sizes: list[tuple[int, int]]) -> Detector:
    """The model for the largest of the workers' frames, as a worker would load it alone.

    Raises:
        ModelError: As :class:`Detector` does, or for a segmentation model (detect-only).
    """
    frame_size = max(sizes, key=lambda size: size[0] * size[1])
    model = model_for_parking(config.model, config.parking, frame_size)
    origin = config.flags.get("model.classes", config.origin)
    detector = Detector(model, frame_size=frame_size, origin=origin, pipelined=True)
    if detector.task == "segment":
        raise config.error(
            "source.shared_inference",
            "the shared inference stage is detect-only (masks would not fit its replies); "
            "run a segmentation model with a model per worker (false)",
        )
    set_torch_threads(detector.backend)
    return detector


def _answer(detector: Detector, workers: list[_Worker]) -> None:
    """Gather the requests waiting from every worker into one call, keeping the runner's rounds in
    flight; answer each in order. Ends once every worker has gone."""
    rounds: deque[_Round] = deque()
    by_connection = {worker.connection: worker for worker in workers}
    while by_connection or rounds:
        ready = wait(list(by_connection), timeout=0 if rounds else WAIT_S) if by_connection else []
        requests: list[tuple[_Worker, int, int]] = []
        images: list[np.ndarray] = []
        for connection in ready:
            worker = by_connection[connection]  # type: ignore[index]
            try:
                while worker.connection.poll():  # every round it has posted
                    _, request_id, slot, name, shapes = worker.connection.recv()
                    frames = worker.frames(slot, name, shapes)
                    requests.append((worker, request_id, len(frames)))
                    images += frames
            except (EOFError, OSError):  # gone (OSError: its segment too): its rounds are answered to no one
                del by_connection[connection]  # type: ignore[arg-type]
        if requests:
            rounds.append(_start(detector, requests, images))
            del images
        if rounds and (len(rounds) >= detector.in_flight or not requests):
            _finish(rounds.popleft(), detector.inference_threads)
    for worker in workers:
        worker.close()


def _start(detector: Detector, requests: list[tuple[_Worker, int, int]], images: list[np.ndarray]) -> _Round:
    try:
        return _Round(requests, detector.start(images))
    except Exception as exc:  # e.g. CUDA out of memory: each worker fails with it
        log.exception("shared inference failed")
        return _Round(requests, None, f"inference failed: {exc}")


def _finish(done: _Round, threads: int | None) -> None:
    """Send each request of a round its detections (or the round's error)."""
    detections: list[Any] = []
    if done.pending is not None:
        try:
            detections = done.pending()
        except Exception as exc:
            log.exception("shared inference failed")
            done.error = f"inference failed: {exc}"
    offset = 0
    for worker, request_id, count in done.requests:
        if done.error is not None:
            worker.send(("failed", request_id, done.error))
        else:
            worker.send(("detected", request_id, detections[offset : offset + count], threads))
        offset += count
