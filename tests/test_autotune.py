"""SpeedTrial: which candidate each frame goes to, how blocks are timed, and which one is kept
(exact cases on a fake clock)."""

from __future__ import annotations

import pytest

from pipeline.models.autotune import SpeedTrial
from pipeline.models.thread_trial import ThreadCountTrial


class FakeClock:
    """A clock that each frame moves on by the time its candidate takes per frame."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_trial(
    seconds_per_frame: dict[str, float], frames: int, stall_at: int | None = None, **options: float
) -> tuple[SpeedTrial[str, str], list[str]]:
    clock = FakeClock()
    options = {"settle_frames": 0, **options}
    trial: SpeedTrial[str, str] = SpeedTrial({label: label for label in seconds_per_frame}, clock=clock, **options)
    handed_out = []
    for frame_index in range(frames):
        label = trial.next()
        handed_out.append(label)
        clock.now += seconds_per_frame[label] + (1.0 if frame_index == stall_at else 0.0)
    return trial, handed_out


def test_blocks_alternate_after_a_warm_up_round_then_the_faster_is_kept():
    trial, handed_out = run_trial({"a": 0.010, "b": 0.008}, frames=100, block_frames=10, rounds=3)
    # warm-up a, b; then a b, b a, a b; then b for good
    expected_blocks = ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert handed_out[:80] == [label for label in expected_blocks for _ in range(10)]
    assert handed_out[80:] == ["b"] * 20
    assert trial.chosen == "b"
    assert trial.medians() == pytest.approx({"a": 100.0, "b": 125.0})
    assert [len(rates) for rates in trial.rates.values()] == [3, 3]  # the warm-up blocks are not scored


def test_the_default_stays_unless_another_is_faster_by_the_margin():
    trial, _ = run_trial({"a": 0.0100, "b": 0.0098}, frames=100, block_frames=10, margin=0.05)  # b 2% faster
    assert trial.chosen == "a"
    trial, _ = run_trial({"a": 0.0100, "b": 0.0090}, frames=100, block_frames=10, margin=0.05)  # b 11% faster
    assert trial.chosen == "b"
    trial, _ = run_trial({"a": 0.0090, "b": 0.0100}, frames=100, block_frames=10, margin=0.05)
    assert trial.chosen == "a"


def test_one_stalled_block_does_not_decide():
    # Frame 25 (in a's first scored block) takes a second longer: that block's rate collapses, but
    # a's median is its other two blocks.
    trial, _ = run_trial({"a": 0.008, "b": 0.010}, frames=100, stall_at=25, block_frames=10)
    assert min(trial.rates["a"]) < 10
    assert trial.chosen == "a"
    trial, _ = run_trial({"a": 0.010, "b": 0.008}, frames=100, stall_at=35, block_frames=10)  # in b's block
    assert trial.chosen == "b"


def test_a_batch_counts_as_its_frames():
    clock = FakeClock()
    trial: SpeedTrial[str, str] = SpeedTrial(
        {"a": "a", "b": "b"}, block_frames=10, settle_frames=0, rounds=1, clock=clock
    )
    handed_out = []
    for _ in range(30):  # batches of 4 frames (4 sources): a block ends after the batch that fills it
        label = trial.next(4)
        handed_out.append(label)
        clock.now += 4 * (0.01 if label == "a" else 0.02)
    assert handed_out[:12] == ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3
    assert trial.medians() == pytest.approx({"a": 100.0, "b": 50.0})
    assert trial.chosen == "a"


def test_until_the_trial_ends_nothing_is_chosen_and_one_candidate_needs_no_trial():
    trial, _ = run_trial({"a": 0.01, "b": 0.01}, frames=79, block_frames=10)
    assert trial.chosen is None and trial.medians()["a"] == pytest.approx(100.0)
    only, handed_out = run_trial({"a": 0.01}, frames=5)
    assert only.chosen == "a" and handed_out == ["a"] * 5
    with pytest.raises(ValueError):
        SpeedTrial({})


def test_the_first_frames_of_a_block_are_not_timed():
    """After a switch, a block's first frames wait on what the previous candidate has in flight:
    here each block's first 3 frames take 0.05 s whatever the candidate, then a takes 0.010 s a
    frame and b 0.008. Timed from the 4th frame on, the rates are exactly the candidates' own."""
    clock = FakeClock()
    trial: SpeedTrial[str, str] = SpeedTrial(
        {"a": "a", "b": "b"}, block_frames=10, settle_frames=3, rounds=3, clock=clock
    )
    for frame_number in range(100):
        label = trial.next()
        first_of_block = frame_number < 80 and frame_number % 10 < 3  # 8 blocks of 10, then the winner
        clock.now += 0.05 if first_of_block else {"a": 0.010, "b": 0.008}[label]
    assert trial.medians() == pytest.approx({"a": 100.0, "b": 125.0})
    assert trial.chosen == "b"


class _Runner:
    """Stands in for a compiled OpenVINO model: its thread count, and a result per frame."""

    in_flight = 1

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def start(self, images: list) -> object:
        return lambda: [None] * len(images)


def test_thread_trial_reports_rates_only_once_it_has_chosen():
    """Two sources sharing one model each write its rates in their summary when they end: rates of a
    trial still running would differ between them, so there are none until it has chosen."""
    clock = FakeClock()
    threads = ThreadCountTrial(_Runner(2), _Runner(1))  # type: ignore[arg-type]
    threads.trial = SpeedTrial({2: threads.trial.candidates[2], 1: threads.trial.candidates[1]},
                               block_frames=2, settle_frames=0, rounds=1, clock=clock)  # fmt: skip
    while threads.trial.chosen is None:
        threads.start([None])
        clock.now += 0.01
        if threads.trial.chosen is None:
            assert threads.rates_fps() == {}, "rates of a trial that has not chosen"
    assert threads.trial.medians() and threads.rates_fps() == threads.trial.medians()
    assert set(threads.rates_fps()) == {2, 1} and threads.threads == 2
