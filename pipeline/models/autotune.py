"""Choosing between equivalent ways to run a stage by timing them on the run's own frames."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class SpeedTrial(Generic[Key, Value]):
    """Hands out candidates in turn, a block of frames each, times the blocks, then keeps the one
    whose blocks went fastest.

    Which setting is fastest can depend on the machine, its load and the source (how many cores
    inference should leave to the Python stages, say), so it is measured where it runs rather than
    guessed. The first round is a warm-up and is not scored (a candidate's first frames pay for its
    buffers; the pipeline's first ones for everything else's). The rounds after it alternate their
    order so that a machine that slows down or speeds up mid-trial favours no candidate, and each
    candidate is scored by the median rate of its blocks, so that one stall does not decide.

    The first candidate is the default: another must beat it by more than ``margin`` to be kept.
    So where something else sets the pace (a live camera, a slow disk), every candidate runs at the
    same rate and the default stays.

    A block is timed from its ``settle_frames``-th frame to the first frame of the next block: in a
    pipeline with bounded queues, the rate at which the stage takes frames is the rate of the whole
    pipeline once the queues are full, but a block's first frames still wait on the frames the
    previous candidate has in flight (which favours whichever candidate follows a faster one).

    Args:
        candidates: Label to candidate, the default first.
        block_frames: Frames per block.
        settle_frames: Frames at the start of each block that are not timed.
        rounds: Scored rounds (each gives every candidate one block).
        margin: How much faster (as a fraction) than the default another candidate must be.
        clock: Seconds, monotonic.

    Example:
        >>> clock = iter(range(1000))  # fake seconds: one per call, i.e. per frame here
        >>> trial = SpeedTrial({"a": "model a", "b": "model b"}, block_frames=2, settle_frames=1,
        ...                   rounds=1, clock=lambda: next(clock))
        >>> [trial.next() for _ in range(10)]  # warm-up a, b; then a, b scored; then the winner
        ['model a', 'model a', 'model b', 'model b', 'model a', 'model a', 'model b', 'model b', 'model a', 'model a']
        >>> trial.chosen, trial.medians()  # equal rates: the default stays
        ('a', {'a': 1.0, 'b': 1.0})
    """

    def __init__(
        self,
        candidates: dict[Key, Value],
        block_frames: int = 24,
        settle_frames: int = 8,
        rounds: int = 3,
        margin: float = 0.05,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not candidates:
            raise ValueError("no candidates to choose from")
        self.candidates = candidates
        self.block_frames = block_frames
        self.settle_frames = settle_frames
        self.margin = margin
        self._clock = clock
        labels = list(candidates)
        self._schedule = list(labels)  # the warm-up round
        for round_index in range(rounds):
            self._schedule += labels if round_index % 2 == 0 else labels[::-1]
        self._scored_from = len(labels)
        self._block = 0
        self._block_frames = 0
        self._timed_from: int | None = None  # frames into the block when its timing began
        self._block_started = 0.0
        self.rates: dict[Key, list[float]] = {label: [] for label in labels}
        """Frames per second of each scored block, per candidate."""
        self.chosen: Key | None = None if len(labels) > 1 else labels[0]
        """The label kept once the trial has ended; None while it runs."""

    def next(self, frames: int = 1) -> Value:
        """The candidate to run the next ``frames`` frames on (call it just before running them)."""
        if self.chosen is not None:
            return self.candidates[self.chosen]
        now = self._clock()
        if self._block_frames >= self.block_frames:  # this call opens the next block
            if self._block >= self._scored_from and self._timed_from is not None and now > self._block_started:
                label = self._schedule[self._block]
                self.rates[label].append((self._block_frames - self._timed_from) / (now - self._block_started))
            self._block += 1
            self._block_frames, self._timed_from = 0, None
            if self._block == len(self._schedule):
                self.chosen = self._choose()
                return self.candidates[self.chosen]
        if self._timed_from is None and self._block_frames >= self.settle_frames:
            self._timed_from, self._block_started = self._block_frames, now
        self._block_frames += frames
        return self.candidates[self._schedule[self._block]]

    def medians(self) -> dict[Key, float]:
        """The median frames per second of each candidate's scored blocks so far (those with any)."""
        return {label: statistics.median(rates) for label, rates in self.rates.items() if rates}

    def _choose(self) -> Key:
        default = next(iter(self.candidates))
        medians = self.medians()
        if default not in medians:
            return default
        fastest = max(medians, key=medians.__getitem__)
        return fastest if medians[fastest] > medians[default] * (1 + self.margin) else default
