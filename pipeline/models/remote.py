"""A model held by another process: a worker's side of the shared inference stage
(:mod:`pipeline.run.inference_stage`).

:class:`RemoteRunner` is a :class:`~pipeline.models.detector.ModelRunner` like the others: its
:meth:`~RemoteRunner.start` writes the frames into a shared memory slot of this process (no pickling
of frames), posts a small request over a pipe and returns a pending that waits for the reply, which
holds the detections only (boxes, confidences, class ids). :class:`SharedDetector` is the
:class:`~pipeline.models.Detector` a worker runs with it, described as the stage's model.

The protocol, one duplex pipe per worker (tuples, first item the kind):

- worker to stage: ``("hello", (width, height))`` once its sources are open (the stage loads the
  model for the largest frame of all workers), then ``("detect", id, slot, name, shapes)`` per
  round: frames of ``shapes`` one after the other from the start of shared memory ``name``; its end
  of the pipe closed: the worker is gone.
- stage to worker: ``("ready", description, names, class_ids, in_flight)`` or ``("error", message,
  exit_code)`` once; then ``("detected", id, detections, threads)`` or ``("failed", id, message)``
  per request, in the order of the requests.
"""

from __future__ import annotations

import math
from contextlib import suppress
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import supervision as sv

from pipeline.config import ModelConfig
from pipeline.errors import ModelError, PipelineError
from pipeline.models.detector import Detector
from pipeline.models.openvino_runner import PendingDetections

STAGE_GONE = "shared inference: the inference process ended before answering (see its error above, if any)"


class StageGone(PipelineError):
    """The shared inference stage ended, or answered with an error."""


def frame_views(buffer: memoryview, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Frames (``uint8`` arrays of ``shapes``) laid one after the other in ``buffer``.

    Example:
        >>> views = frame_views(memoryview(bytearray(range(10))), [(2, 2), (3, 2)])
        >>> [v.tolist() for v in views]
        [[[0, 1], [2, 3]], [[4, 5], [6, 7], [8, 9]]]
    """
    views, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        views.append(np.ndarray(shape, np.uint8, buffer, offset))
        offset += size
    return views


class FrameSlot:
    """A shared memory segment a round's frames are written into, grown (a new segment) when a
    round needs more; owned by this process, which unlinks it on :meth:`close`."""

    def __init__(self) -> None:
        self.memory: shared_memory.SharedMemory | None = None

    def write(self, images: list[np.ndarray]) -> str:
        """Copy ``images`` into the slot, one after the other; the segment's name."""
        needed = sum(image.nbytes for image in images)
        if self.memory is None or self.memory.size < needed:
            self.close()
            self.memory = shared_memory.SharedMemory(create=True, size=max(needed, 1))
        shapes = [image.shape for image in images]
        for view, image in zip(frame_views(self.memory.buf, shapes), images, strict=True):
            np.copyto(view, image)
        return self.memory.name

    def close(self) -> None:
        if self.memory is not None:
            memory, self.memory = self.memory, None
            memory.close()
            with suppress(FileNotFoundError):
                memory.unlink()


class RemoteRunner:
    """Runs the stage's model on a worker's frames (see the module's protocol).

    Keeps at most :attr:`in_flight` requests out, one shared memory slot each: a slot is written
    again only once its reply has come. Not thread-safe: start and wait from one thread.

    Args:
        connection: This worker's end of its pipe to the stage, after the ``ready`` reply.
        in_flight: Requests to keep out (the stage's runner's, at least two: one round travels while
            the next is prepared).
        threads: The stage's inference threads, as last reported.
    """

    def __init__(self, connection: Connection, in_flight: int, threads: int | None) -> None:
        self.connection = connection
        self.in_flight = in_flight
        self.threads = threads
        self._slots = [FrameSlot() for _ in range(in_flight + 1)]
        self._free = list(range(len(self._slots)))
        self._next_id = 0
        self._replies: dict[int, tuple] = {}  # replies that came before their pending asked

    def start(self, images: list[np.ndarray]) -> PendingDetections:
        """Post ``images`` to the stage; the returned function waits for their detections.

        Raises:
            StageGone: The stage ended (on the call of the pending, or here when posting).
        """
        if not self._free:
            raise RuntimeError(f"more than {len(self._slots)} requests in flight")
        slot = self._free.pop(0)
        request_id, self._next_id = self._next_id, self._next_id + 1
        name = self._slots[slot].write(images)
        try:
            self.connection.send(("detect", request_id, slot, name, [image.shape for image in images]))
        except OSError:
            self._free.append(slot)
            raise StageGone(STAGE_GONE) from None
        return lambda: self._wait(request_id, slot)

    def _wait(self, request_id: int, slot: int) -> list[sv.Detections]:
        try:
            while request_id not in self._replies:
                try:
                    reply = self.connection.recv()
                except (EOFError, OSError):
                    raise StageGone(STAGE_GONE) from None
                self._replies[reply[1]] = reply
        finally:
            self._free.append(slot)
        kind, _, payload, *rest = self._replies.pop(request_id)
        if kind == "failed":
            raise StageGone(f"shared inference: {payload}")
        self.threads = rest[0]
        return payload

    def close(self) -> None:
        """Unlink the slots (the stage's mappings of them stay valid until it drops them)."""
        for slot in self._slots:
            slot.close()


class SharedDetector(Detector):
    """A worker's detector whose model is the shared stage's: described as the stage describes it,
    with ``shared_inference`` saying where it ran; nothing is loaded here.

    Args:
        config: The run's model section.
        ready: The stage's ``ready`` reply.
        connection: This worker's end of its pipe to the stage.
    """

    def __init__(self, config: ModelConfig, ready: tuple, connection: Connection) -> None:
        _, described, names, class_ids, in_flight = ready
        self.config = config
        self._described = described
        self.weights, self.backend, self.device = described["model"], described["backend"], described["device"]
        self.precision, self.input_size = described["precision"], tuple(described["input_size"])
        self.names, self.task, self.class_ids = names, described["task"], class_ids
        self.model_path = self.weights
        self.runner = RemoteRunner(connection, max(2, in_flight), described["inference_threads"])

    def describe(self) -> dict[str, Any]:
        return {**self._described, "inference_threads": self.runner.threads}

    def stages(self) -> dict[str, str]:
        return self._described["stages"]

    def close(self) -> None:
        assert isinstance(self.runner, RemoteRunner)
        self.runner.close()


def connect(connection: Connection, config: ModelConfig, frame_size: tuple[int, int]) -> SharedDetector:
    """Say hello to the stage with this worker's largest frame and wait for its model.

    Raises:
        PipelineError: The stage could not load the model (its message and exit code), or ended.
    """
    try:
        connection.send(("hello", frame_size))
        ready = connection.recv()
    except (EOFError, OSError):
        raise StageGone(STAGE_GONE) from None
    if ready[0] == "error":
        error = ModelError(ready[1])
        error.exit_code = ready[2]
        raise error
    return SharedDetector(config, ready, connection)
