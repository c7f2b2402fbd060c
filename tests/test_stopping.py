"""Ctrl-C and SIGTERM while ``vpipe run`` starts (pipeline/stopping.py): the process ends at once with
130, whatever its main thread is doing; once the run writes, a stop is a KeyboardInterrupt again.

Each case is a real Python process signalled for real. The main thread stands in for start-up code
that does not let an interrupt through: the C extensions whose initialisation turns it into
``ImportError`` and the libraries that catch everything (with the interrupt raised into the main
thread, such a process never stops).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from tests.conftest import REPO

SWALLOWS_INTERRUPTS = """
import time
while True:
    try:
        time.sleep(0.05)
    except BaseException:
        pass
"""


def started(program: str) -> subprocess.Popen[str]:
    """``program`` in a new Python process, once it has printed ``ready`` (its handlers are in place)."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(program)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "ready\n", process.stderr.read()
    return process


def stopped(process: subprocess.Popen[str], sig: int) -> tuple[int, str, str]:
    """Send ``sig``; the exit code, stdout and stderr (killed, and a failure, after a generous 60 s)."""
    process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"still running 60 s after signal {sig}") from None
    return process.returncode, out, err


def test_a_stop_while_starting_ends_the_process_at_once_whatever_the_main_thread_does():
    for sig in (signal.SIGTERM, signal.SIGINT):
        process = started(
            "from pipeline.stopping import exit_at_once_on_stop\n"
            "exit_at_once_on_stop()\n"
            "print('ready', flush=True)\n" + SWALLOWS_INTERRUPTS
        )
        assert stopped(process, sig) == (130, "", "vpipe: interrupted\n")


def test_once_the_run_writes_a_stop_is_a_keyboard_interrupt_again():
    process = started(
        """
        import signal, time
        from pipeline.cli_main import _stop_on_sigterm
        from pipeline.stopping import exit_at_once_on_stop, stop_gracefully_from_now
        signal.signal(signal.SIGTERM, _stop_on_sigterm)  # as vpipe's commands have it
        exit_at_once_on_stop()
        stop_gracefully_from_now()
        try:
            print("ready", flush=True)
            time.sleep(60)
        except KeyboardInterrupt:
            print("finalized", flush=True)
        """
    )
    assert stopped(process, signal.SIGTERM) == (0, "finalized\n", "")


def test_a_stop_noted_as_start_up_ends_is_raised_then():
    """A stop the watcher thread had no time to act on is not lost: ending start-up raises it."""
    process = started(
        """
        import time
        from pipeline import stopping
        stopping._watch = lambda receiver: None  # a watcher too late to act
        stopping.exit_at_once_on_stop()
        print("ready", flush=True)
        while not stopping._startup.stop_requested:  # the signal's Python-level handler has run
            time.sleep(0.01)
        try:
            stopping.stop_gracefully_from_now()
        except KeyboardInterrupt:
            print("raised", flush=True)
        """
    )
    assert stopped(process, signal.SIGTERM) == (0, "raised\n", "")
