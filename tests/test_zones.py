"""Zone occupancy on synthetic detections."""

from __future__ import annotations

from pipeline.analytics import Analytics
from pipeline.analytics.zones import ZoneCounter
from pipeline.config import LineConfig, ZoneConfig
from tests.test_lines import frame_of

SQUARE = [(100, 100), (300, 100), (300, 300), (100, 300)]


def test_counts_objects_whose_anchor_is_inside_per_class():
    zone = ZoneCounter("z", SQUARE)
    # Anchors: inside (car), inside (truck), outside; the last box overlaps the zone but its anchor is below it.
    count = zone.update(
        frame_of((1, 150, 200, "car"), (2, 250, 250, "truck"), (3, 50, 200, "car"), (4, 200, 310, "car"))
    )
    assert count == 2
    assert zone.count_by_class == {"car": 1, "truck": 1}


def test_max_and_mean_over_frames():
    zone = ZoneCounter("z", SQUARE)
    zone.update(frame_of((1, 150, 200, "car")))
    zone.update(frame_of((1, 150, 200, "car"), (2, 160, 200, "car"), (3, 170, 200, "car")))
    zone.update(frame_of())
    assert zone.max_count == 3
    assert zone.mean_count == (1 + 3 + 0) / 3


def test_untracked_detections_are_not_counted():
    zone = ZoneCounter("z", SQUARE)
    assert zone.update(frame_of((None, 150, 200, "car"))) == 0


def test_analytics_summary_matches_counters():
    below_line = [(100, 220), (300, 220), (300, 300), (100, 300)]
    analytics = Analytics([LineConfig("h", (100, 200), (500, 200))], [ZoneConfig("z", below_line)], forget_after_s=2)
    analytics.update(frame_of((1, 200, 150, "car")), 0, 0.0)
    events = analytics.update(frame_of((1, 200, 250, "car")), 1, 0.03)
    assert [e.to_record()["direction"] for e in events] == ["in"]
    summary = analytics.summary()
    assert summary["lines"]["h"] == {"in": {"car": 1}, "out": {}, "in_total": 1, "out_total": 0}
    assert summary["zones"]["z"] == {"max_count": 1, "mean_count": 0.5}
    assert analytics.line_counts() == {"h": (1, 0)}
