"""Ray, imported here only, when a batch has work to do, so the rest of vpipe runs without it.

:class:`RaySession` connects to a cluster (``--ray-address``) or starts Ray on this machine;
:class:`TaskPool` keeps at most ``--workers`` tasks in flight and hands back results as they
finish. Ray's own retries are off: the batch retries failed items itself and records every
attempt in the manifest.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import deque
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Any

from pipeline.errors import PipelineError

RAY_MISSING = "vpipe batch needs Ray: pip install 'vpipe[cluster]'"
LOCAL_OBJECT_STORE_BYTES = 500_000_000
"""Tasks exchange small summaries, not frames: a local Ray needs little shared memory."""


def import_ray(local: bool) -> ModuleType:
    """Import Ray, or fail with one line saying how to install it.

    Args:
        local: Ray will be started on this machine only; its servers then listen on the loopback
            interface (Ray's Linux default is every interface, without authentication).

    Raises:
        PipelineError: Ray is not installed.
    """
    if local:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # read by Ray at import
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # vpipe works offline; so does its Ray
    try:
        import ray
    except ImportError:
        raise PipelineError(RAY_MISSING) from None
    return ray


class RaySession:
    """Ray for the duration of a ``with`` block: connected to ``address``, or started locally.

    Args:
        ray: The Ray module (from :func:`import_ray`).
        address: A cluster's address (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) or None to
            start Ray here with every core.
    """

    def __init__(self, ray: ModuleType, address: str | None) -> None:
        self._ray = ray
        self.address = address

    def __enter__(self) -> RaySession:
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.address is None:
                self._ray.init(
                    address="local", include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES, **options
                )
            else:
                self._ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if self.address is None:
                raise PipelineError(f"cannot start Ray on this machine ({reason})") from None
            raise PipelineError(
                f"--ray-address {self.address}: cannot connect to Ray ({reason}); is the cluster up and reachable? "
                "If it uses token authentication, set RAY_AUTH_MODE=token"
            ) from None
        for sig, handler in handlers.items():  # Ray's core installs its own (it exits without cleaning up)
            if callable(handler):
                signal.signal(sig, handler)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._ray.shutdown()

    def remote(self, function: Callable[..., Any], num_cpus: float, num_gpus: float = 0.0) -> Any:
        """``function`` as a Ray task needing ``num_cpus`` / ``num_gpus`` per call, without Ray retries."""
        return self._ray.remote(function).options(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0)


TaskKey = tuple[str, str]
"""What a task is, for its submitter: ``(kind, name)``, e.g. ``("item", "cam1/a.mp4")``."""


class TaskPool:
    """Submits Ray tasks with at most ``max_in_flight`` running, and collects their results.

    Args:
        ray: The Ray module.
        max_in_flight: Concurrency cap (``--workers``), or None to let Ray schedule everything.
    """

    def __init__(self, ray: ModuleType, max_in_flight: int | None = None) -> None:
        self._ray = ray
        self._max = max_in_flight
        self._queued: deque[tuple[TaskKey, Any, tuple[Any, ...]]] = deque()
        self._running: dict[Any, TaskKey] = {}

    def __len__(self) -> int:
        return len(self._queued) + len(self._running)

    def submit(self, key: TaskKey, remote_function: Any, *args: Any) -> None:
        """Queue ``remote_function.remote(*args)``; it starts when a slot is free."""
        self._queued.append((key, remote_function, args))
        self._start_queued()

    def _start_queued(self) -> None:
        while self._queued and (self._max is None or len(self._running) < self._max):
            key, function, args = self._queued.popleft()
            self._running[function.remote(*args)] = key

    def wait(self, timeout_s: float) -> list[tuple[TaskKey, Any]]:
        """Results of the tasks that finished within ``timeout_s``: ``(key, value)``, where the value
        is the Ray error (worker or node lost, task cancelled) if the task itself did not return."""
        if not self._running:
            return []
        done, pending = self._ray.wait(list(self._running), num_returns=1, timeout=timeout_s)
        if done and pending:  # collect whatever else is ready too, without waiting
            more, _ = self._ray.wait(pending, num_returns=len(pending), timeout=0)
            done += more
        finished = []
        for ref in done:
            key = self._running.pop(ref)
            try:
                finished.append((key, self._ray.get(ref)))
            except self._ray.exceptions.RayError as exc:
                finished.append((key, exc))
        self._start_queued()
        return finished
