"""Detection on its own thread: the frames that are ready from every source, batched into one call."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Protocol

import supervision as sv

from pipeline.concurrency import PrefetchIterator
from pipeline.errors import PipelineError
from pipeline.io.sources.files import Frame
from pipeline.models import Detector, PendingDetections
from pipeline.run.frame_pipeline import Need


class NeedsDetection(Protocol):
    """A source's run, which says which of its frames go to the detector."""

    def detection_need(self, frame: Frame) -> Need: ...


@dataclass(frozen=True)
class Detected:
    """A frame of source ``index`` and its detections (None: not for the detector, ``--detect-every``;
    ``held``: not for it as unchanged since the last detected frame, ``model.motion_gate``)."""

    index: int
    frame: Frame
    detections: sv.Detections | None
    held: bool = False


@dataclass(frozen=True)
class Ended:
    """Source ``index`` has delivered its last frame."""

    index: int


@dataclass(frozen=True)
class Failed:
    """Source ``index`` failed with ``error``; nothing more comes from it."""

    index: int
    error: PipelineError


Batch = list[Detected | Ended | Failed]


class DetectionStage:
    """Takes the frames that are ready from every source and detects them in one batch, on its own
    thread, so inference overlaps the main thread's tracking, counting and writing.

    Keeps up to ``detector.in_flight`` batches in inference at once (OpenVINO's throughput streams
    on a CPU), handing them on in order; when no new frame is ready, whatever is in flight is
    finished and handed on at once rather than held back.

    Iterating yields one batch per step: a :class:`Detected` per frame, an :class:`Ended` for a
    source after its last frame, a :class:`Failed` for one that failed; an empty batch every
    ``TICK_S`` while no frame comes, so the consumer can tend the sources. :meth:`stop_source` drops
    a source (the consumer failed it), :meth:`add_source` adds one of the ``expected`` sources still
    connecting (or None: it will not come); :meth:`close` ends the iteration.
    """

    TICK_S = 0.25

    def __init__(
        self,
        readers: list[PrefetchIterator[Frame]],
        runs: Sequence[NeedsDetection],
        detector: Detector,
        expected: int = 0,
    ) -> None:
        self.readers = readers
        self.runs = runs
        self.detector = detector
        self._stopped: set[int] = set()
        self._closed = threading.Event()
        self._added: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._expected = expected

    def stop_source(self, index: int) -> None:
        self._stopped.add(index)

    def add_source(self, index: int | None) -> None:
        """One of the expected sources is ready (its run and reader are in place), or None: will not come."""
        self._added.put(index)

    def _take_added(self, active: list[int]) -> None:
        while not self._added.empty():
            index = self._added.get()
            self._expected -= 1
            if index is not None:
                active.append(index)

    def close(self) -> None:
        self._closed.set()

    def __iter__(self) -> Iterator[Batch]:
        active = list(range(len(self.readers)))
        in_flight: deque[tuple[Batch, list[tuple[int, Frame]], list[Need], PendingDetections]] = deque()
        last_yield = time.monotonic()
        try:
            while (active or self._expected > 0) and not self._closed.is_set():
                self._take_added(active)
                active = [index for index in active if index not in self._stopped]
                ended, ready = self._poll(active, waiting=bool(in_flight))
                if not ready:
                    while in_flight:
                        yield self._finish(*in_flight.popleft())
                        last_yield = time.monotonic()
                    if ended or time.monotonic() - last_yield > self.TICK_S:
                        yield ended
                        last_yield = time.monotonic()
                    elif active or self._expected > 0:
                        time.sleep(0.005)
                    continue
                wanted = [self.runs[index].detection_need(frame) for index, frame in ready]
                images = [frame.image for (_, frame), want in zip(ready, wanted, strict=True) if want is Need.DETECT]
                in_flight.append((ended, ready, wanted, self.detector.start(images)))
                while len(in_flight) >= self.detector.in_flight:
                    yield self._finish(*in_flight.popleft())
                    last_yield = time.monotonic()
            while in_flight:
                yield self._finish(*in_flight.popleft())
        finally:
            for *_, pending in in_flight:  # stopped early: let the inference in progress end first
                with suppress(Exception):  # its results are not wanted, nor are its errors
                    pending()

    def _poll(self, active: list[int], waiting: bool) -> tuple[Batch, list[tuple[int, Frame]]]:
        """The sources that ended or failed (removed from ``active``) and the frames ready now.

        Waits briefly for a frame only with a single source and none ready yet; less while
        inference is ``waiting`` in flight, which takes longer than this wait."""
        ended: Batch = []
        ready: list[tuple[int, Frame]] = []
        for index in list(active):
            reader = self.readers[index]
            try:
                frame = reader.poll(timeout=0 if ready or len(active) > 1 else 0.01 if waiting else 0.1)
            except PipelineError as exc:
                ended.append(Failed(index, exc))
                active.remove(index)
                continue
            if frame is not None:
                ready.append((index, frame))
            elif reader.done:
                active.remove(index)
                ended.append(Ended(index))
        return ended, ready

    @staticmethod
    def _finish(ended: Batch, ready: list[tuple[int, Frame]], wanted: list[Need], pending: PendingDetections) -> Batch:
        detected = iter(pending())
        return ended + [
            Detected(index, frame, next(detected) if want is Need.DETECT else None, held=want is Need.HOLD)
            for (index, frame), want in zip(ready, wanted, strict=True)
        ]
