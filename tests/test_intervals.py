"""Interval binning and the peak hour on synthetic events (exact expectations)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.analytics.approaches import Approach
from pipeline.analytics.events import CrosswalkCrossing, LineCrossing, Movement
from pipeline.analytics.intervals import IntervalCounter, merge_rows
from pipeline.analytics.movements import MovementCounter
from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.io.outputs.intervals_file import IntervalsFile
from pipeline.io.sources.frames import Frame
from pipeline.run.frame_pipeline import FrameResult
from pipeline.store.writes import record_time_ms
from tests.test_movements import APPROACHES, drive, path

KEYS = [("line", "main", "in"), ("line", "main", "out")]


def crossing(t: float, direction: str = "in", class_name: str = "car") -> LineCrossing:
    return LineCrossing(0, t, "main", direction, track_id=1, class_name=class_name)  # type: ignore[arg-type]


def run(counter: IntervalCounter, frames_s: list[float], events_at: dict[float, list]) -> list[dict]:
    rows = []
    for t in frames_s:
        rows += counter.update(events_at.get(t, []), t)
    return rows + counter.finish()


def totals(rows: list[dict], direction: str = "in") -> list[tuple[str, int]]:
    return [(r["interval_start"], r["count"]) for r in rows if r["class_name"] == "all" and r["direction"] == direction]


def test_an_event_on_a_boundary_opens_the_next_bin_and_empty_bins_get_zero_rows():
    counter = IntervalCounter(60.0, None, KEYS, lag_s=0.0)
    frames = [float(t) for t in range(0, 181, 1)]  # 1 fps for 3 minutes
    rows = run(counter, frames, {59.0: [crossing(59.0)], 60.0: [crossing(60.0), crossing(60.0, "out")]})
    assert totals(rows) == [("0.0", 1), ("60.0", 1), ("120.0", 0), ("180.0", 0)]
    assert totals(rows, "out") == [("0.0", 0), ("60.0", 1), ("120.0", 0), ("180.0", 0)]


def test_rows_per_class_add_up_to_the_all_row():
    counter = IntervalCounter(60.0, None, KEYS, lag_s=0.0)
    events = {1.0: [crossing(1.0, class_name="car"), crossing(1.0, class_name="bus")], 2.0: [crossing(2.0)]}
    rows = [r for r in run(counter, [0.0, 1.0, 2.0, 30.0], events) if r["direction"] == "in"]
    assert [(r["class_name"], r["count"]) for r in rows] == [("all", 3), ("bus", 1), ("car", 2)]


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_run_that_starts_mid_bin_is_aligned_to_the_clock_and_says_what_it_covered():
    counter = IntervalCounter(900.0, epoch("2024-05-01T07:05:00"), KEYS, lag_s=0.0)
    frames = [float(t) for t in range(0, 1501, 10)]  # 07:05:00 .. 07:30:00, the last frame opens a third bin
    rows = run(counter, frames, {100.0: [crossing(100.0)], 500.0: [crossing(500.0)], 700.0: [crossing(700.0)]})
    all_in = [r for r in rows if r["class_name"] == "all" and r["direction"] == "in"]
    assert [(r["interval_start"], r["interval_end"], r["covered_s"], r["count"]) for r in all_in] == [
        ("2024-05-01T07:00:00Z", "2024-05-01T07:15:00Z", 600.0, 2),
        ("2024-05-01T07:15:00Z", "2024-05-01T07:30:00Z", 900.0, 1),  # 700 s is 07:16:40
        ("2024-05-01T07:30:00Z", "2024-05-01T07:45:00Z", 0.0, 0),
    ]


def test_a_live_feed_across_midnight_changes_date():
    counter = IntervalCounter(900.0, epoch("2024-12-31T23:50:00"), KEYS, lag_s=0.0)
    frames = [float(t) for t in range(0, 1800, 30)]  # 23:50 .. 00:19:30
    rows = run(counter, frames, {300.0: [crossing(300.0)], 660.0: [crossing(660.0)]})  # 23:55 and 00:01
    assert totals(rows) == [("2024-12-31T23:45:00Z", 1), ("2025-01-01T00:00:00Z", 1), ("2025-01-01T00:15:00Z", 0)]


def test_a_live_feed_bins_by_the_clock_at_its_first_frame_across_midnight_and_a_stall(tmp_path: Path):
    # The feed's first frame (timestamp 5 s: it started 5 s before) arrives at 23:52:35 (mid-bin);
    # frames every 10 s until 00:10:05, then none until 00:31:05 (a stall: not covered), then until 00:33:05.
    clock = epoch("2024-12-31T23:52:35")
    intervals = IntervalsFile(tmp_path / "intervals.csv", 900.0, None, KEYS, live=True, lag_s=0.0, clock=lambda: clock)
    frames_s = [float(t) for t in [*range(5, 1056, 10), *range(2315, 2436, 10)]]
    events_at = {t: [crossing(t)] for t in (155.0, 515.0, 2375.0)}  # 23:55:05, 00:01:05, 00:32:05
    for index, t in enumerate(frames_s):
        frame = Frame(None, index, t)  # type: ignore[arg-type]  # binning needs no pixels
        intervals.write(FrameResult(frame, None, events_at.get(t, []), {}, None))  # type: ignore[arg-type]
        clock += 10.0  # the clock moves on; the bins follow the frames' times from the first reading
    intervals.close()
    rows = csv.DictReader((tmp_path / "intervals.csv").open())
    assert [
        (r["interval_start"], r["interval_end"], float(r["covered_s"]), int(r["count"]))
        for r in rows
        if (r["direction"], r["class_name"]) == ("in", "all")
    ] == [
        ("2024-12-31T23:45:00Z", "2025-01-01T00:00:00Z", 445.0, 1),
        ("2025-01-01T00:00:00Z", "2025-01-01T00:15:00Z", 605.0, 1),  # seen until 00:10:05, then the stall
        ("2025-01-01T00:15:00Z", "2025-01-01T00:30:00Z", 0.0, 0),
        ("2025-01-01T00:30:00Z", "2025-01-01T00:45:00Z", 120.0, 1),  # 00:31:05 .. 00:33:05
    ]


def test_a_late_event_goes_to_its_own_bin_while_the_bin_is_held_open():
    counter = IntervalCounter(60.0, None, KEYS, lag_s=5.0)
    # reported at 62 s, last seen at 58 s
    late = Movement(0, 58.0, "A->?", "A", None, 0, 50.0, 8.0, track_id=1, class_name="car")
    rows = run(counter, [0.0, 58.0, 62.0, 66.0, 70.0], {62.0: [late]})
    movement_rows = [r for r in rows if r["kind"] == "movement" and r["class_name"] == "all"]
    assert [(r["interval_start"], r["name"], r["count"]) for r in movement_rows] == [
        ("0.0", "A->?", 1),
        ("60.0", "A->?", 0),
    ]


def test_bins_are_written_only_lag_s_after_their_end():
    counter = IntervalCounter(60.0, None, KEYS, lag_s=5.0)
    assert counter.update([crossing(10.0)], 10.0) == []
    assert counter.update([], 64.0) == []
    assert totals(counter.update([], 65.0)) == [("0.0", 1)]


@pytest.mark.parametrize(
    ("per_bin", "start", "volume", "phf"),
    [
        ([10, 20, 30, 40, 5], "0.0", 100, 0.625),  # 100 / (4 x 40)
        ([5, 10, 20, 30, 40], "900.0", 100, 0.625),
        ([25, 25, 25, 25, 25], "0.0", 100, 1.0),  # the first of equal hours
        ([40, 0, 0, 0, 0], "0.0", 40, 0.25),  # the full hour, not the first bin alone (as much volume, no PHF)
    ],
)
def test_peak_hour_and_peak_hour_factor(per_bin: list[int], start: str, volume: int, phf: float):
    counter = IntervalCounter(900.0, None, KEYS, lag_s=0.0)
    events_at = {
        index * 900.0 + 1.0: [crossing(index * 900.0 + 1.0) for _ in range(n)] for index, n in enumerate(per_bin)
    }
    run(counter, [float(t) for t in range(900 * len(per_bin))], events_at)  # a frame a second: every bin whole
    assert counter.summary()["peak_hour"] == {"line:main:in": {"start": start, "volume": volume, "phf": phf}}


def _per_bin(per_bin: dict[int, int], first_s: float, last_s: float) -> IntervalCounter:
    """A run with a frame a second from ``first_s`` to ``last_s``; ``per_bin[k]`` crossings in 900 s bin k,
    at its first second watched."""
    counter = IntervalCounter(900.0, None, KEYS, lag_s=0.0)
    events_at = {max(k * 900.0, first_s): [crossing(max(k * 900.0, first_s))] * n for k, n in per_bin.items()}
    run(counter, [float(t) for t in range(int(first_s), int(last_s) + 1)], events_at)
    return counter


def test_the_runs_peak_hour_is_made_of_bins_it_watched_whole():
    # From 600 s (a run starting 10 minutes into a bin) to 5399 s: bin 0 watched 300 s (8 crossings), bins
    # 1 .. 5 whole: 10, 10, 10, 5, 10. With the partial bin, 0-3600 would be the peak hour (38, PHF
    # 38 / (4 x 10) = 0.95); of whole bins, 900-4500 and 1800-5400 have 35 each: the first, PHF 0.875.
    counter = _per_bin({0: 8, 1: 10, 2: 10, 3: 10, 4: 5, 5: 10}, 600.0, 5399.0)
    assert counter.summary()["peak_hour"] == {"line:main:in": {"start": "900.0", "volume": 35, "phf": 0.875}}
    # Ending 5 minutes into bin 4 (30 crossings there): 900-4500 would have 50; 0-3600 is the whole hour.
    counter = _per_bin({0: 5, 1: 5, 2: 5, 3: 5, 4: 30}, 0.0, 3900.0)
    assert counter.summary()["peak_hour"] == {"line:main:in": {"start": "0.0", "volume": 20, "phf": 1.0}}


def test_without_an_hour_of_whole_bins_the_peak_is_the_whole_bins_without_a_factor():
    # 600 s to 3299 s: bins 0 (300 s, 20 crossings) and 3 (600 s, 20) partial, 1 and 2 whole (3 and 4).
    counter = _per_bin({0: 20, 1: 3, 2: 4, 3: 20}, 600.0, 3299.0)
    reason = "the run watched no hour of whole bins (2 of 4 bins)"  # it spans 4 bins, 2 of them partial
    assert counter.summary()["peak_hour"] == {
        "line:main:in": {"start": "900.0", "volume": 7, "phf": None, "phf_reason": reason}
    }


def test_bins_split_between_two_pieces_are_whole_when_their_parts_add_up():
    """A batch's two slices meet 400 s into bin 900: its 60 + 60 crossings count in a whole bin; the last
    bin (300 s, 100 crossings) is partial. The peak hour 0-3600 has 1 + 120 + 1 + 1, PHF 123 / (4 x 120)."""
    row = dict(kind="line", name="main", direction="in", class_name="all")

    def piece(*bins: tuple[float, float, int]) -> list[dict[str, str]]:
        return [
            {
                **row,
                "interval_start": str(start),
                "interval_end": str(start + 900),
                "covered_s": str(s),
                "count": str(n),
            }
            for start, s, n in bins
        ]

    first = piece((0.0, 900.0, 1), (900.0, 400.0, 60))
    second = piece((900.0, 500.0, 60), (1800.0, 900.0, 1), (2700.0, 900.0, 1), (3600.0, 300.0, 100))
    _, summary = merge_rows([first, second], 900.0)
    assert summary["peak_hour"] == {"line:main:in": {"start": "0.0", "volume": 123, "phf": 0.256}}


def test_interval_and_start_time_are_validated():
    assert load_config(None, {"output": {"interval": "5s"}}).output.interval == "5s"
    with pytest.raises(ConfigError, match=r"^output.interval: expected a duration"):
        load_config(None, {"output": {"interval": "often"}})
    with pytest.raises(ConfigError, match=r"^source.start_time: expected an ISO 8601"):
        load_config(None, {"source": {"start_time": "7am"}})


# -- binned by when it happened: a line's crossing, a movement's entry into the intersection ------------


def _bins_of(counter: IntervalCounter, events: list, confirmed_s: float) -> dict[tuple[str, str], int]:
    """Feed ``events`` at ``confirmed_s`` (frames every 0.1 s around it); each key's count per bin start."""
    rows = run(counter, [899.0, confirmed_s, 1000.0], {confirmed_s: events})
    return {(r["name"], r["interval_start"]): r["count"] for r in rows if r["class_name"] == "all" and r["count"]}


def test_a_crossing_is_binned_by_when_it_crossed_not_when_it_was_confirmed():
    late = LineCrossing(9001, 900.1, "main", "in", crossed_s=899.95, track_id=1, class_name="car")
    counter = IntervalCounter(900.0, start_epoch_s=None, keys=KEYS, lag_s=0.0)
    assert _bins_of(counter, [late], 900.1) == {("main", "0.0"): 1}
    record = late.to_record()
    assert record_time_ms(record, 1_000_000) == 1_000_000 + 899_950  # the store's time (and so the TMC's)
    assert record_time_ms({**record, "crossed_s": None}, 0) == 900_100  # an older record: its confirmation


@pytest.mark.parametrize("west", ["polygon", "gate"])
def test_a_movement_is_binned_by_when_it_entered_the_intersection(west: str):
    """W->E along y=200 at 10 fps, x = 50, 68.75, 87.5, 106.25 ... from frame 8996 (899.6 s): out of W's
    polygon (x <= 100) first at frame 8999, 899.9 s; across a gate at x=100 between 899.8 and 899.9 s,
    2/3 of the way (87.5 -> 106.25). It reaches E (x >= 300) at frame 9010, 901.0 s, the next bin."""
    approaches = {name: Approach.of(polygon) for name, polygon in APPROACHES.items()}
    if west == "gate":
        approaches["W"] = Approach.placed(None, [(100, 250), (100, 150)])  # "in" toward +x, the box
    counter = MovementCounter(approaches, min_outside_s=0.5, forget_after_s=1.0, min_crossing_distance=6.0)
    (movement,) = drive(counter, path("W", "C", "E"), start=8996)
    assert (movement.movement, movement.timestamp_s) == ("W->E", pytest.approx(901.0))
    entered_s = 899.9 if west == "polygon" else 899.8 + 0.1 * (100 - 87.5) / 18.75
    assert movement.entered_s == pytest.approx(entered_s, abs=1e-4)  # crossed_s is kept to 0.1 ms

    counter = IntervalCounter(900.0, start_epoch_s=None, keys=[("movement", "W->E", "")], lag_s=0.0)
    assert _bins_of(counter, [movement], 901.0) == {("W->E", "0.0"): 1}
    assert record_time_ms(movement.to_record(), 0) == round(movement.entered_s * 1000)


def test_a_crosswalk_crossing_is_binned_by_when_it_crossed_in_a_run_and_in_the_next_one(tmp_path: Path):
    """A pedestrian's walk across a polygon counted at 899.95 s, confirmed as it left at 900.6 s: the first
    bin, here, in the store, and when a restarted run counts a killed one's frames again from events.jsonl."""
    late = CrosswalkCrossing(9006, 900.6, "zebra", None, 899.95, track_id=1, class_name="person")
    keys = [("crosswalk", "zebra", "")]
    counter = IntervalCounter(900.0, start_epoch_s=None, keys=keys, lag_s=0.0)
    assert _bins_of(counter, [late], 900.6) == {("zebra", "0.0"): 1}
    assert record_time_ms(late.to_record(), 1_000_000) == 1_000_000 + 899_950

    intervals = IntervalsFile(tmp_path / "intervals.csv", 900.0, None, keys, live=False, lag_s=0.0)
    frames = [(899.0, []), (900.6, [late.to_record()]), (1000.0, [])]
    written = intervals.continue_from([], [("killed", lambda from_s: frames)])
    assert [(r["interval_start"], r["class_name"], r["count"], r["run_id"]) for r in written] == [
        ("0.0", "all", 1, "killed"),
        ("0.0", "person", 1, "killed"),
        ("900.0", "all", 0, "killed"),
    ]


def test_a_bin_split_by_a_restart_is_whole_when_both_runs_watched_it():
    """The first process watched bin 900 until 1300 s (60 crossings), the next from 1300 s (60 more) to
    3899 s: bin 900 is whole, bin 3600 (299 s, 100 crossings) is not. Peak 0-3600: 123, PHF 123 / (4 x 120)."""
    row = dict(kind="line", name="main", direction="in", class_name="all", interval_end="")
    earlier = [
        {**row, "interval_start": "0.0", "covered_s": "900.0", "count": "1"},
        {**row, "interval_start": "900.0", "covered_s": "400.0", "count": "60"},
    ]
    counter = IntervalCounter(900.0, None, KEYS, lag_s=0.0)
    counter.carry(earlier)
    events_at = {1300.0: [crossing(1300.0)] * 60, 1800.0: [crossing(1800.0)], 2700.0: [crossing(2700.0)]}
    run(counter, [float(t) for t in range(1300, 3900)], {**events_at, 3600.0: [crossing(3600.0)] * 100})
    assert counter.summary()["peak_hour"] == {"line:main:in": {"start": "0.0", "volume": 123, "phf": 0.256}}
