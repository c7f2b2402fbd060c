"""Pipelining helpers: run a stage on its own thread behind a small bounded queue.

Decoding (PyAV), inference (OpenVINO/ONNX Runtime/PyTorch), drawing (OpenCV) and encoding (x264)
release the GIL, so the end-to-end rate approaches the slowest stage rather than their sum. The
queues are bounded, so memory stays flat however long the run.

Example:
    >>> results = []
    >>> with BackgroundWorker(results.append, maxsize=2) as worker:
    ...     for item in PrefetchIterator(range(5), maxsize=2):
    ...         worker.submit(item * 10)
    >>> results
    [0, 10, 20, 30, 40]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from pipeline.closing import Closing

T = TypeVar("T")

_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class PrefetchIterator(Generic[T]):
    """Iterates ``source`` on a background thread, ``maxsize`` items ahead.

    An exception raised by ``source`` is re-raised in the consumer at the point it happened.

    Args:
        source: Any iterable (e.g. a frame source).
        maxsize: How many items may wait in the queue.
        drop_oldest: When the queue is full, discard its oldest item instead of waiting (the
            latest-frame policy for live feeds); :attr:`dropped` counts them.
    """

    def __init__(self, source: Iterable[T], maxsize: int = 4, drop_oldest: bool = False) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._drop_oldest = drop_oldest
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, args=(source,), name="prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            if self._drop_oldest and item is not _END and not isinstance(item, _Failure):
                try:
                    self._queue.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
                    continue
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                if self._stop.is_set():
                    return
                self._put(item)
        except BaseException as error:  # handed to the consumer thread
            self._put(_Failure(error))
        self._put(_END)

    done: bool = False
    """The source has ended (or failed) and everything it produced has been taken."""

    def poll(self, timeout: float = 0.0) -> T | None:
        """The next item, or None if none arrives within ``timeout`` seconds or the source has ended
        (then :attr:`done` is set). The source's exception, if it failed, is raised here."""
        if self.done:
            return None
        try:
            item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None
        if item is _END:
            self.done = True
            return None
        if isinstance(item, _Failure):
            self.done = True
            raise item.error
        return item  # type: ignore[return-value]

    def __iter__(self) -> Iterator[T]:
        while not self.done:
            item = self.poll(timeout=3600)
            if item is not None:
                yield item

    def stop(self) -> None:
        """Ask the producer to stop after the item it is reading, without waiting for it."""
        self._stop.set()

    def close(self, timeout_s: float = 10.0) -> bool:
        """Stop the producer (it finishes the item it is reading) and wait up to ``timeout_s`` for it.

        Returns:
            Whether the producer has ended (else it is still blocked in ``source``; being a daemon
            thread, it does not keep the process alive).
        """
        self._stop.set()
        self._thread.join(timeout=timeout_s)
        return not self._thread.is_alive()


class BackgroundWorker(Closing, Generic[T]):
    """Calls ``handle(item)`` for each submitted item, in order, on a background thread.

    :meth:`submit` blocks while ``maxsize`` items wait. An exception in ``handle`` is re-raised by
    the next :meth:`submit` or by :meth:`close`. Use it as a context manager: leaving the block
    processes everything submitted, then stops the thread.
    """

    def __init__(self, handle: Callable[[T], object], maxsize: int = 4) -> None:
        self._handle = handle
        self._queue: queue.Queue[object] = queue.Queue(maxsize=maxsize)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="worker", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._handle(item)  # type: ignore[arg-type]
                except BaseException as error:  # handed to the submitting thread
                    self._error = error

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, item: T) -> None:
        self._raise_pending()
        self._queue.put(item)

    def close(self) -> None:
        """Finish every submitted item, stop the thread and re-raise a pending error."""
        if not self._closed:
            self._closed = True
            self._queue.put(_END)
            self._thread.join()
        self._raise_pending()


@dataclass(frozen=True)
class Backoff:
    """How a connection is retried: waits doubling from ``first_s`` up to ``max_s``, and
    ``max_attempts`` failures in a row before giving up (None: never). Live sources reconnect with
    it, and the webhook sink redelivers with it.

    Example:
        >>> backoff = Backoff(max_attempts=3, first_s=0.5, max_s=2.0)
        >>> [backoff.wait_s(attempt) for attempt in (1, 2, 3, 4)], backoff.exhausted(3), backoff.exhausted(4)
        ([0.5, 1.0, 2.0, 2.0], False, True)
    """

    max_attempts: int | None = None
    first_s: float = 0.5
    max_s: float = 30.0

    def wait_s(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failure in a row (counted from 1)."""
        return min(self.first_s * 2 ** (attempt - 1), self.max_s)

    def exhausted(self, attempt: int) -> bool:
        """Whether ``attempt`` failures in a row are more than the attempts allowed."""
        return self.max_attempts is not None and attempt > self.max_attempts
