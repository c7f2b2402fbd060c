"""Parking occupancy: coverage by box or mask, debouncing, intervals and utilisation."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from pipeline.analytics.parking import ParkingMonitor

SLOT = [(100, 100), (200, 100), (200, 150), (100, 150)]  # 100 x 50 px
FPS = 10


def car(x0: float, y0: float, x1: float, y1: float, mask: np.ndarray | None = None) -> sv.Detections:
    return sv.Detections(xyxy=np.array([[x0, y0, x1, y1]], float), mask=mask, tracker_id=np.array([1]))


NONE = sv.Detections(xyxy=np.zeros((0, 4)), tracker_id=np.zeros(0, int))


def play(parking: ParkingMonitor, frames: list[sv.Detections]) -> list:
    return [e for i, d in enumerate(frames) for e in parking.update(d, i, i / FPS)]


def test_coverage_by_box():
    parking = ParkingMonitor({"A1": SLOT})
    assert parking.coverage(car(100, 100, 150, 150)) == {"A1": pytest.approx(0.5, abs=0.03)}
    assert parking.coverage(car(300, 300, 350, 350)) == {"A1": 0.0}


def test_coverage_by_mask_ignores_the_empty_part_of_the_box():
    mask = np.zeros((1, 300, 300), bool)
    mask[0, 100:150, 100:125] = True  # the box covers the slot, the mask only a quarter
    parking = ParkingMonitor({"A1": SLOT})
    assert parking.coverage(car(100, 100, 200, 150, mask)) == {"A1": pytest.approx(0.25, abs=0.03)}


def test_a_car_that_stays_is_reported_after_the_debounce_dated_to_its_arrival():
    parking = ParkingMonitor({"A1": SLOT}, min_overlap=0.5, debounce_s=1.0)
    events = play(parking, [NONE] * 5 + [car(100, 100, 200, 150)] * 20)
    assert [(e.to_record()["event"], e.frame_index, e.timestamp_s) for e in events] == [("slot_occupied", 5, 0.5)]
    assert parking.occupied == {"A1": True} and (parking.occupied_count, parking.free_count) == (1, 0)


def test_a_car_driving_past_does_not_flicker_the_slot():
    parking = ParkingMonitor({"A1": SLOT}, min_overlap=0.5, debounce_s=1.0)
    passing = [car(100 + 10 * i - 100, 100, 200 + 10 * i - 100, 150) for i in range(20)]  # 2 s across
    assert play(parking, [NONE] * 3 + passing + [NONE] * 10) == []
    assert parking.pop_intervals() == []


def test_below_min_overlap_is_free():
    parking = ParkingMonitor({"A1": SLOT}, min_overlap=0.6, debounce_s=0.0)
    assert play(parking, [car(100, 100, 150, 150)] * 3) == []


def test_intervals_and_utilisation():
    parking = ParkingMonitor({"A1": SLOT, "A2": [(300, 100), (400, 100), (400, 150), (300, 150)]}, debounce_s=0.5)
    frames = [NONE] * 10 + [car(100, 100, 200, 150)] * 30 + [NONE] * 20  # parked 1.0 s .. 4.0 s of a 6 s run
    events = play(parking, frames)
    assert [(e.to_record()["event"], e.timestamp_s) for e in events] == [("slot_occupied", 1.0), ("slot_free", 4.0)]
    [interval] = parking.pop_intervals()
    assert (interval["start_s"], interval["end_s"], interval["duration_s"], interval["ongoing"]) == (
        1.0,
        4.0,
        3.0,
        False,
    )
    parking.finish(end_s=6.0)
    summary = parking.summary(end_s=6.0)
    assert summary["slots"]["A1"] == {"occupied_s": 3.0, "utilisation": 0.5}
    assert summary["slots"]["A2"]["utilisation"] == 0.0


def test_a_car_still_parked_at_the_end_gives_an_ongoing_interval():
    parking = ParkingMonitor({"A1": SLOT}, debounce_s=0.5)
    play(parking, [car(100, 100, 200, 150)] * 20)
    [interval] = parking.finish(end_s=2.0)
    assert (interval["start_s"], interval["end_s"], interval["ongoing"]) == (0.0, 2.0, True)
