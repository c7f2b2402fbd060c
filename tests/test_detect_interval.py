"""``--detect-every auto``: the chooser's rules on synthetic rates (frames and seconds given, no
clock), the tracker and config that follow it, and one real run of four cameras whose summaries
report the choice and whose crossings match highway.mp4's hand count to the bar tests/test_low_fps.py
holds every 4th frame to (within one vehicle per line and direction, at most one missed and one
extra): which frames are detected follows the machine's speed, so it may differ from run to run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from pipeline.cli_args import positive_int_or_auto
from pipeline.config import TrackerConfig, load_config
from pipeline.errors import ConfigError
from pipeline.evaluation import Tolerance, load_counted, load_truth, match_crossings
from pipeline.run.detect_interval import CHANGES_KEPT, HOLD_WINDOWS, MAX_HOLD_WINDOWS, IntervalChooser, RateWindow
from pipeline.tracking import ByteTrackTracker
from tests.conftest import GROUND_TRUTH, run_highway_cameras
from tests.test_low_fps import assert_within_one_vehicle

FPS = 30.0


def at_rate(chooser: IntervalChooser, fps: float, dropped: int = 0, frame_index: int = 0) -> int:
    """One two-second window processed at ``fps``."""
    return chooser.observe(frames=round(2 * fps), elapsed_s=2.0, dropped=dropped, frame_index=frame_index)


@pytest.mark.parametrize(
    ("source_fps", "limit"),
    [(60.0, 4), (30.0, 4), (30000 / 1001, 4), (15.0, 3), (10.0, 2), (7.5, 1), (5.0, 1), (2.0, 1)],
)
def test_the_interval_never_leaves_fewer_than_5_detections_a_second_nor_exceeds_4(source_fps: float, limit: int):
    chooser = IntervalChooser(source_fps)
    assert chooser.limit == limit
    for _ in range(10):  # far behind, every window
        at_rate(chooser, source_fps / 10)
    assert chooser.interval == limit


def test_a_camera_behind_goes_up_one_step_per_window():
    chooser = IntervalChooser(FPS)
    assert chooser.interval == 1
    assert [at_rate(chooser, 20.0) for _ in range(5)] == [2, 3, 4, 4, 4]
    assert at_rate(chooser, 28.0) == 4  # more than 5 % under 30 is behind; at the limit it stays there


def test_within_5_percent_of_the_source_rate_is_real_time():
    chooser = IntervalChooser(FPS)
    assert at_rate(chooser, 29.0) == 1  # 3 % under: not raised


def test_dropped_frames_mean_behind_even_at_the_source_rate():
    chooser = IntervalChooser(FPS)
    assert at_rate(chooser, 30.0, dropped=1) == 2
    assert at_rate(chooser, 30.0, dropped=0) == 2


def test_it_comes_down_when_one_step_lower_surely_keeps_up_after_two_windows():
    chooser = IntervalChooser(FPS)
    for _ in range(3):
        at_rate(chooser, 10.0)
    assert chooser.interval == 4
    # at 4, 44 fps: at 3 at least 44 * 3 / 4 = 33 >= 31.5 (30 + 5 %): lowered on the second such window
    assert [at_rate(chooser, 44.0) for _ in range(2)] == [4, 3]
    # at 3, 44 fps: at 2 at least 29.3 < 31.5, not sure: held until the trial after HOLD_WINDOWS
    assert [at_rate(chooser, 44.0) for _ in range(HOLD_WINDOWS - 1)] == [3] * (HOLD_WINDOWS - 1)
    assert at_rate(chooser, 44.0) == 2


def test_a_live_camera_at_its_own_rate_is_lowered_on_trial_and_waits_twice_as_long_after_a_failed_one():
    chooser = IntervalChooser(FPS)
    at_rate(chooser, 20.0)
    at_rate(chooser, 20.0)
    assert chooser.interval == 3
    # A live feed shows at most its own rate: never surely faster, so a trial after HOLD_WINDOWS.
    assert [at_rate(chooser, 30.0) for _ in range(HOLD_WINDOWS)] == [3] * (HOLD_WINDOWS - 1) + [2]
    assert at_rate(chooser, 30.0, dropped=3) == 3  # the trial fell behind: back up
    assert chooser.hold == 2 * HOLD_WINDOWS
    assert [at_rate(chooser, 30.0) for _ in range(2 * HOLD_WINDOWS)] == [3] * (2 * HOLD_WINDOWS - 1) + [2]
    assert at_rate(chooser, 30.0) == 2  # this trial held
    assert chooser.hold == 2 * HOLD_WINDOWS  # and the wait stays as it was
    waits = []
    for _ in range(8):  # trials that fail one after the other: the wait doubles up to its bound
        windows = 1
        while at_rate(chooser, 30.0) == 2:
            windows += 1
        waits.append(windows)
        assert at_rate(chooser, 30.0, dropped=1) == 2
    assert (
        waits == [2 * HOLD_WINDOWS - 1, 4 * HOLD_WINDOWS, 8 * HOLD_WINDOWS, 16 * HOLD_WINDOWS] + [MAX_HOLD_WINDOWS] * 4
    )


def test_the_changes_are_reported_with_their_frames_and_bounded():
    chooser = IntervalChooser(FPS)
    at_rate(chooser, 20.0, frame_index=61)
    at_rate(chooser, 20.0, frame_index=101)
    at_rate(chooser, 20.0, frame_index=141)
    assert chooser.report(frames_detected=50) == {
        "detect_every": 4,
        "max_detect_every": 4,
        "frames_detected": 50,
        "changes": [
            {"frame_index": 61, "detect_every": 2},
            {"frame_index": 101, "detect_every": 3},
            {"frame_index": 141, "detect_every": 4},
        ],
    }
    for index in range(3 * CHANGES_KEPT):  # up and down for weeks: only the latest are kept
        chooser.hold = 1
        at_rate(chooser, 30.0, frame_index=2 * index)
        at_rate(chooser, 10.0, frame_index=2 * index + 1)
    changes = chooser.report(0)["changes"]
    assert len(changes) == CHANGES_KEPT and changes[-1]["frame_index"] == 6 * CHANGES_KEPT - 1


def test_the_rate_window_counts_frames_from_the_first_one_and_the_drops_within_it():
    seen = []

    class Recording(IntervalChooser):
        def observe(self, frames: int, elapsed_s: float, dropped: int = 0, frame_index: int = 0) -> int:
            seen.append((frames, elapsed_s, dropped, frame_index))
            return super().observe(frames, elapsed_s, dropped, frame_index)

    times = iter([100.0, 100.5, 101.0, 101.5, 102.0, 102.5, 103.0, 103.5, 104.0])
    window = RateWindow(Recording(FPS), window_s=2.0, clock=lambda: next(times))
    results = [window.frame(index, dropped_total=5 + index // 6) for index in range(9)]
    # first frame at 100.0 opens the window; the frame at 102.0 closes it with 4 frames in 2 s (behind)
    assert results == [None, None, None, None, 2, None, None, None, 3]
    assert seen == [(4, 2.0, 0, 5), (4, 2.0, 1, 9)]


def stopped_car_ids(lost_frames_before: int, lost_frames_after: int) -> list[int]:
    """The IDs reported for a car standing still at 30 fps (buffer 1 s), seen on 3 frames, then missed on
    ``lost_frames_before`` frames detected one by one, when the interval becomes 3, then on
    ``lost_frames_after`` frames more (whole intervals), then seen again where it stood."""
    tracker = ByteTrackTracker(TrackerConfig(track_buffer_s=1.0), fps=30)
    car = sv.Detections(np.array([[100.0, 100.0, 160.0, 140.0]]), confidence=np.array([0.9]), class_id=np.array([2]))
    tracker.update(sv.Detections.empty())  # tracks born on the very first frame are confirmed at once
    ids = [tracker.update(car).tracker_id.tolist() for _ in range(3)]
    for _ in range(lost_frames_before):
        tracker.update(sv.Detections.empty())
    tracker.set_detect_every(3)
    for _ in range(lost_frames_after // 3):
        tracker.predict(), tracker.predict()
        tracker.update(sv.Detections.empty())
    tracker.predict(), tracker.predict()
    return [i for frame in [*ids, tracker.update(car).tracker_id.tolist()] for i in frame]


def test_the_tracker_keeps_lost_tracks_as_long_in_seconds_after_a_change():
    # Lost for 15 frames at every frame, then 6 + 3 at every third: 24 frames (0.8 s) of a 1 s
    # buffer. Counted in updates at the new interval (10), its 16 updates would have dropped it
    # (ByteTrack keeps a dropped track re-findable for one more update, then forgets it).
    assert stopped_car_ids(15, 6) == [1, 1, 1]  # confirmed on its second sighting, then re-found
    # Lost for 15 + 21 + 3 frames, beyond the buffer and that one update: a new track (not yet
    # confirmed, so not reported).
    assert stopped_car_ids(15, 21) == [1, 1]


def test_auto_is_a_value_of_detect_every_in_the_config_and_the_flag(tmp_path: Path):
    path = tmp_path / "auto.yaml"
    path.write_text("model:\n  detect_every: auto\n")
    assert load_config(path).model.detect_every == "auto"
    assert load_config(None, {"model": {"detect_every": 3}}).model.detect_every == 3
    path.write_text("model:\n  detect_every: sometimes\n")
    with pytest.raises(ConfigError, match=r"auto.yaml: model.detect_every: expected an integer"):
        load_config(path)
    assert (positive_int_or_auto("auto"), positive_int_or_auto("2")) == ("auto", 2)


def test_four_cameras_on_auto_report_the_choice_and_count_as_the_hand_count(tmp_path: Path):
    result, out = run_highway_cameras(tmp_path, 4, "--detect-every", "auto")
    assert result.returncode == 0, result.stderr
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 4
    truth = load_truth(GROUND_TRUTH / "highway_ground_truth.yaml")
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        chosen = summary["detect_every_auto"]
        assert summary["detect_every"] == "auto" and chosen["max_detect_every"] == 4
        assert 1 <= chosen["detect_every"] <= 4
        assert all(1 <= change["detect_every"] <= 4 for change in chosen["changes"])
        frames = summary["frames"]
        assert frames == 335 and frames / 4 <= chosen["frames_detected"] <= frames  # never sparser than 1 in 4
        if chosen["changes"]:  # the first change raises it: frames were skipped from then on
            assert chosen["changes"][-1]["detect_every"] == chosen["detect_every"]
            assert chosen["frames_detected"] < frames
        # the bar and tolerance tests/test_low_fps.py holds every 4th frame to, the sparsest interval allowed
        matched = match_crossings(truth, load_counted(folder / "events.jsonl"), Tolerance.for_run(30000 / 1001, 4))
        assert_within_one_vehicle(matched, f"{folder.name} on auto")
