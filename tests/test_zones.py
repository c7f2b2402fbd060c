"""Zone occupancy, enter/exit events and dwell times on synthetic tracks."""

from __future__ import annotations

import pytest

from pipeline.analytics import Analytics
from pipeline.analytics.zones import ZoneCounter
from pipeline.config import LineConfig, ZoneConfig
from tests.test_lines import frame_of

SQUARE = [(100, 100), (300, 100), (300, 300), (100, 300)]
FPS = 10


def test_counts_objects_whose_anchor_is_inside_per_class():
    zone = ZoneCounter("z", SQUARE)
    # Anchors: inside (car), inside (truck), outside; the last box overlaps the zone but its anchor is below it.
    count_frame = frame_of((1, 150, 200, "car"), (2, 250, 250, "truck"), (3, 50, 200, "car"), (4, 200, 310, "car"))
    zone.update(count_frame, 0, 0.0)
    assert zone.count == 2
    assert zone.count_by_class == {"car": 1, "truck": 1}


def test_max_and_mean_over_frames():
    zone = ZoneCounter("z", SQUARE)
    zone.update(frame_of((1, 150, 200, "car")), 0, 0.0)
    zone.update(frame_of((1, 150, 200, "car"), (2, 160, 200, "car"), (3, 170, 200, "car")), 1, 0.1)
    zone.update(frame_of(), 2, 0.2)
    assert zone.max_count == 3
    assert zone.mean_count == (1 + 3 + 0) / 3


def test_untracked_detections_are_not_counted():
    zone = ZoneCounter("z", SQUARE)
    assert zone.update(frame_of((None, 150, 200, "car")), 0, 0.0) == []
    assert zone.count == 0


def walk(zone: ZoneCounter, xs: list[float | None], track_id: int = 1) -> list:
    """Move one track along y=200 at 10 fps; None = not detected on that frame."""
    events = []
    for frame_index, x in enumerate(xs):
        detections = frame_of() if x is None else frame_of((track_id, x, 200, "car"))
        events += zone.update(detections, frame_index, frame_index / FPS)
    return events


def test_enter_and_exit_with_dwell_time_from_timestamps():
    zone = ZoneCounter("z", SQUARE)
    events = walk(zone, [50, 90, 110, 150, 200, 250, 310, 350])
    assert [(e.event_type, e.frame_index) for e in events] == [("zone_enter", 2), ("zone_exit", 6)]
    assert events[1].dwell_s == pytest.approx(0.4)
    assert (zone.enters, zone.exits, zone.dwell_max_s) == (1, 1, pytest.approx(0.4))


def test_a_track_lost_inside_and_found_within_the_grace_keeps_its_dwell_time():
    zone = ZoneCounter("z", SQUARE, lost_grace_s=0.5)
    events = walk(zone, [50, 150, None, None, None, 200, 250, 350])
    assert [e.event_type for e in events] == ["zone_enter", "zone_exit"]
    # Entered on frame 1 (0.1 s), first seen outside on frame 7 (0.7 s): the gap did not restart it.
    assert events[1].dwell_s == pytest.approx(0.7 - 0.1)
    assert events[1].frame_index == 7


def test_a_track_that_vanishes_inside_exits_at_its_last_sighting():
    zone = ZoneCounter("z", SQUARE, lost_grace_s=0.3)
    events = walk(zone, [50, 150, 160, 170, None, None, None, None, None])
    assert [e.event_type for e in events] == ["zone_enter", "zone_exit"]
    assert (events[1].frame_index, events[1].dwell_s) == (3, pytest.approx(0.2))
    assert zone.tracks_held == 0


def test_tracks_still_inside_report_their_dwell_so_far():
    zone = ZoneCounter("z", SQUARE)
    walk(zone, [150, 160, 170])
    assert zone.dwell_so_far(now_s=0.5) == {1: 0.5}


def test_analytics_summary_matches_counters():
    below_line = [(100, 220), (300, 220), (300, 300), (100, 300)]
    analytics = Analytics([LineConfig("h", (100, 200), (500, 200))], [ZoneConfig("z", below_line)], forget_after_s=2)
    analytics.update(frame_of((1, 200, 150, "car")), 0, 0.0)
    events = analytics.update(frame_of((1, 200, 250, "car")), 1, 0.1)
    assert sorted(e.to_record()["event"] for e in events) == ["line_crossing", "zone_enter"]
    summary = analytics.summary(end_s=0.2)
    assert summary.lines["h"] == {
        "in": {"car": 1},
        "out": {},
        "in_total": 1,
        "out_total": 0,
        "in_by_group": {"cars": 1},  # a car is in the default group "cars"
        "out_by_group": {},
    }
    zone = summary.zones["z"]
    assert (zone["max_count"], zone["mean_count"], zone["enters"], zone["inside_at_end"]) == (1, 0.5, 1, {"1": 0.1})
    assert analytics.row() == {"h_in": 1, "h_out": 0, "z_count": 1}
