"""Pipelining helpers: order, bounded queues, error propagation, latest-frame dropping."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.concurrency import BackgroundWorker, PrefetchIterator


def test_prefetch_keeps_order_and_ends():
    assert list(PrefetchIterator(range(100), maxsize=3)) == list(range(100))


def test_prefetch_reraises_the_source_error_after_the_items_before_it():
    def source():
        yield 1
        yield 2
        raise ValueError("broken at 3")

    seen = []
    with pytest.raises(ValueError, match="broken at 3"):
        for item in PrefetchIterator(source()):
            seen.append(item)
    assert seen == [1, 2]


def test_prefetch_reads_at_most_maxsize_ahead():
    produced = []

    def source():
        for index in range(50):
            produced.append(index)
            yield index

    iterator = iter(PrefetchIterator(source(), maxsize=4))
    next(iterator)
    time.sleep(0.3)
    assert len(produced) <= 1 + 4 + 1  # consumed + queued + the one waiting to be put


def test_drop_oldest_keeps_the_newest_items_for_a_slow_consumer():
    prefetch = PrefetchIterator(range(1000), maxsize=2, drop_oldest=True)
    time.sleep(0.3)  # the producer runs far ahead of this consumer
    items = list(prefetch)
    assert items[-1] == 999
    assert prefetch.dropped == 1000 - len(items) > 0


def test_worker_processes_everything_in_order_before_close_returns():
    results = []
    with BackgroundWorker(lambda item: (time.sleep(0.001), results.append(item)), maxsize=2) as worker:
        for item in range(50):
            worker.submit(item)
    assert results == list(range(50))


def test_worker_error_is_raised_in_the_submitting_thread():
    def handle(item: int) -> None:
        if item == 3:
            raise RuntimeError("encoder failed")

    worker = BackgroundWorker(handle, maxsize=1)
    with pytest.raises(RuntimeError, match="encoder failed"):
        for item in range(100):
            worker.submit(item)
            time.sleep(0.005)
    worker.close()


def test_worker_runs_on_another_thread():
    threads = []
    with BackgroundWorker(lambda _: threads.append(threading.get_ident())) as worker:
        worker.submit(0)
    assert threads and threads[0] != threading.get_ident()
