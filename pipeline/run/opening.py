"""Opens the sources of a run side by side, so one that cannot connect delays none of the others.

Each source is opened on its own thread (a live source retries there, with its own backoff and
``max_reconnects``). The run starts once every source is open or has failed, or a grace period
after the first one opened; a source still connecting then joins the run when it connects.

Example::

    with SourceOpener(["a.mp4", "rtsp://cam/1"], lambda spec, stop: open_source(spec, stop_event=stop)) as opener:
        for index, outcome in opener.wait_for_start(grace_s=10):
            ...  # a FrameSource, or the PipelineError that says why it could not be opened
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

from pipeline.closing import Closing
from pipeline.errors import PipelineError
from pipeline.io.sources.files import FrameSource

Outcome = tuple[int, FrameSource | PipelineError]
"""A source's index in the run's list and what opening it gave."""


class SourceOpener(Closing):
    """Opens ``specs`` with ``open_one(spec, stop_event)``, each on its own daemon thread.

    Args:
        specs: What to open, in the run's order.
        open_one: Opens one spec; raises :class:`PipelineError` when it cannot, and gives up
            connecting soon after ``stop_event`` is set.
    """

    def __init__(self, specs: Sequence[str], open_one: Callable[[str, threading.Event], FrameSource]) -> None:
        self._results: queue.SimpleQueue[tuple[int, FrameSource | BaseException]] = queue.SimpleQueue()
        self._stops = [threading.Event() for _ in specs]
        self._lock = threading.Lock()
        self._closed = False
        self.pending = set(range(len(specs)))
        """Indices not yet handed out by :meth:`take` (still connecting, or waiting to be taken)."""
        for index, spec in enumerate(specs):
            args = (index, spec, open_one)
            threading.Thread(target=self._open, args=args, name=f"open-{index}", daemon=True).start()

    def _open(self, index: int, spec: str, open_one: Callable[[str, threading.Event], FrameSource]) -> None:
        try:
            outcome: FrameSource | BaseException = open_one(spec, self._stops[index])
        except BaseException as error:  # handed to the thread that takes it
            outcome = error
        with self._lock:
            if self._closed:  # nobody will take it any more
                if isinstance(outcome, FrameSource):
                    outcome.close()
                return
            self._results.put((index, outcome))

    def take(self, timeout_s: float = 0.0) -> list[Outcome]:
        """The sources that finished opening since the last call, waiting up to ``timeout_s`` for one.

        Raises:
            BaseException: An unexpected error from ``open_one`` (a :class:`PipelineError` is returned).
        """
        taken: list[Outcome] = []
        try:
            item = self._results.get(timeout=timeout_s) if timeout_s > 0 else self._results.get_nowait()
            while True:
                index, outcome = item
                self.pending.discard(index)
                if not isinstance(outcome, FrameSource | PipelineError):
                    raise outcome
                taken.append((index, outcome))
                item = self._results.get_nowait()
        except queue.Empty:
            return taken

    def wait_for_start(self, grace_s: float) -> list[Outcome]:
        """Wait until every source is open or failed, or ``grace_s`` after the first one opened;
        with none open, wait on (a source retrying for ever keeps the wait going)."""
        outcomes: list[Outcome] = []
        deadline: float | None = None
        while self.pending and (deadline is None or time.monotonic() < deadline):
            # Short waits: Ctrl-C and SIGTERM are handled between them.
            outcomes += self.take(timeout_s=0.2)
            if deadline is None and any(isinstance(outcome, FrameSource) for _, outcome in outcomes):
                deadline = time.monotonic() + grace_s
        return outcomes

    def close(self) -> None:
        """Stop the sources still connecting and close those opened but never taken."""
        with self._lock:
            self._closed = True
        for stop in self._stops:
            stop.set()
        while True:
            try:
                _, outcome = self._results.get_nowait()
            except queue.Empty:
                return
            if isinstance(outcome, FrameSource):
                outcome.close()
