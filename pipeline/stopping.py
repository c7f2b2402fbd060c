"""How ``vpipe run`` answers Ctrl-C and SIGTERM while it starts: it ends at once, exit 130.

Once the run writes, a stop is a :class:`KeyboardInterrupt` that the runner catches to finalize its
outputs (:mod:`pipeline.cli_main`). Before that there is nothing to finalize, and an interrupt raised
into start-up code does harm: Python runs a signal handler only between bytecodes of the main
thread, so a stop waits out whatever C call that thread is in (an OpenVINO compile, an int8
calibration pass, an export: seconds each on a loaded machine), and the exception lands inside
imports and libraries, where C extensions turn it into ``ImportError: initialization failed`` (a
traceback, exit 1) and broad ``except`` clauses swallow it. So while the run starts, the C-level
handler's wakeup byte (:func:`signal.set_wakeup_fd`) is read by a thread of its own, which ends the
process at once, whatever the main thread is doing.

Example::

    exit_at_once_on_stop()      # start-up: imports, sources opening, the model loading
    ...
    stop_gracefully_from_now()  # about to write: a stop is a KeyboardInterrupt again
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
INTERRUPTED_EXIT_CODE = 130


class _Startup:
    """The start-up state: the previous handlers, the wakeup socket and whether a stop came."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # the watcher exits only while start-up is still on
        self.previous: dict[int, Any] = {}
        self.previous_wakeup_fd = -1
        self.sockets: tuple[socket.socket, socket.socket] | None = None
        self.stop_requested = False

    @property
    def on(self) -> bool:
        return self.sockets is not None


_startup = _Startup()


def _note_stop(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler while starting: the watcher thread does the stopping."""
    _startup.stop_requested = True


def _watch(receiver: socket.socket) -> None:
    """Wait for a stop signal's wakeup byte; while start-up is on, end the process at once."""
    with receiver:
        while data := receiver.recv(64):  # b"": the other end closed, start-up is over
            if not any(sig in data for sig in STOP_SIGNALS):
                continue
            with _startup.lock:
                if not _startup.on:
                    return
                os.write(2, b"vpipe: interrupted\n")  # no lock taken: the main thread may hold stderr's
                os._exit(INTERRUPTED_EXIT_CODE)


def exit_at_once_on_stop() -> None:
    """From now until :func:`stop_gracefully_from_now`, Ctrl-C or SIGTERM ends the process at once
    (``vpipe: interrupted``, exit 130). Call it before anything is written; a no-op off the main
    thread (only it may set signal handlers)."""
    if _startup.on or threading.current_thread() is not threading.main_thread():
        return
    receiver, sender = socket.socketpair()
    sender.setblocking(False)  # set_wakeup_fd needs it
    _startup.stop_requested = False
    _startup.sockets = (receiver, sender)
    _startup.previous = {sig: signal.signal(sig, _note_stop) for sig in STOP_SIGNALS}
    _startup.previous_wakeup_fd = signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(receiver,), name="stop-watcher", daemon=True).start()


def stop_gracefully_from_now() -> None:
    """End start-up: the handlers in place before :func:`exit_at_once_on_stop` are back (a stop
    raises :class:`KeyboardInterrupt`). A no-op where start-up was not on (a worker process).

    Raises:
        KeyboardInterrupt: A stop came in the instant start-up ended.
    """
    with _startup.lock:
        if not _startup.on:
            return
        signal.set_wakeup_fd(_startup.previous_wakeup_fd)
        for sig, handler in _startup.previous.items():
            signal.signal(sig, handler)
        sender = _startup.sockets[1]  # type: ignore[index]
        _startup.sockets = None
    sender.close()  # the watcher's recv ends, and it closes its end
    if _startup.stop_requested:
        raise KeyboardInterrupt
