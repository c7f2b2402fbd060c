"""Parking occupancy: footprint and coverage rules with one-to-one matching, debouncing, intervals, utilisation."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from pipeline.analytics.occupancy import OccupancyRule
from pipeline.analytics.parking import ParkingMonitor, model_for_parking
from pipeline.config import ModelConfig, ParkingConfig, SlotConfig

SLOT = [(100, 100), (200, 100), (200, 150), (100, 150)]  # 100 x 50 px
FPS = 10


def car(x0: float, y0: float, x1: float, y1: float, mask: np.ndarray | None = None) -> sv.Detections:
    return sv.Detections(xyxy=np.array([[x0, y0, x1, y1]], float), mask=mask, tracker_id=np.array([1]))


NONE = sv.Detections(xyxy=np.zeros((0, 4)), tracker_id=np.zeros(0, int))


def play(parking: ParkingMonitor, frames: list[sv.Detections]) -> list:
    return [e for i, d in enumerate(frames) for e in parking.update(d, i, i / FPS)]


def test_coverage_by_box():
    rule = OccupancyRule({"A1": SLOT}, rule="coverage")
    assert rule.scores(car(100, 100, 150, 150)).tolist() == [[pytest.approx(0.5, abs=0.03)]]
    assert rule.scores(car(300, 300, 350, 350)).tolist() == [[0.0]]


def test_coverage_by_mask_ignores_the_empty_part_of_the_box():
    mask = np.zeros((1, 300, 300), bool)
    mask[0, 100:150, 100:125] = True  # the box covers the slot, the mask only a quarter
    rule = OccupancyRule({"A1": SLOT}, rule="coverage")
    assert rule.scores(car(100, 100, 200, 150, mask)).tolist() == [[pytest.approx(0.25, abs=0.03)]]


def test_a_car_that_stays_is_reported_after_the_debounce_dated_to_its_arrival():
    parking = ParkingMonitor({"A1": SLOT}, min_overlap=0.5, debounce_s=1.0)
    events = play(parking, [NONE] * 5 + [car(100, 100, 200, 150)] * 20)
    assert [(e.to_record()["event"], e.frame_index, e.timestamp_s) for e in events] == [("slot_occupied", 5, 0.5)]
    assert parking.occupied == {"A1": True} and (parking.occupied_count, parking.free_count) == (1, 0)


def test_a_car_driving_past_does_not_flicker_the_slot():
    parking = ParkingMonitor({"A1": SLOT}, min_overlap=0.5, debounce_s=1.0, rule="coverage")
    passing = [car(100 + 10 * i - 100, 100, 200 + 10 * i - 100, 150) for i in range(20)]  # 2 s across
    assert play(parking, [NONE] * 3 + passing + [NONE] * 10) == []
    assert parking.pop_intervals() == []


def test_below_min_overlap_is_free():
    parking = ParkingMonitor({"A1": SLOT}, min_overlap=0.6, debounce_s=0.0, rule="coverage")
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


# A row of two 40 x 20 px bays seen at an angle: a parked car's box is 40 x 40, its lower half on the ground.
BAYS = {"B1": [(0, 100), (40, 100), (40, 120), (0, 120)], "B2": [(40, 100), (80, 100), (80, 120), (40, 120)]}


def cars(*boxes: tuple[float, float, float, float], confidence: float = 0.8) -> sv.Detections:
    return sv.Detections(xyxy=np.array(boxes, float).reshape(-1, 4), confidence=np.full(len(boxes), confidence))


def test_a_car_leaning_over_the_bay_behind_it_occupies_only_its_own():
    # Its box covers half of the row behind (y 60..100 is not a bay here: the bay above is B0).
    bays = {**BAYS, "B0": [(0, 60), (40, 60), (40, 80), (0, 80)]}
    rule = OccupancyRule(bays, rule="footprint", min_overlap=0.5)
    assert rule.occupied(cars((0, 75, 40, 120))) == {"B1": True, "B2": False, "B0": False}
    # The coverage rule is fooled by the lean: the box covers a quarter of B0 too, and all of B1.
    coverage = OccupancyRule(bays, rule="coverage", min_overlap=0.2)
    [scores] = coverage.scores(cars((0, 75, 40, 120))).tolist()
    assert scores == pytest.approx([1.0, 0.0, 0.25], abs=0.08)  # polygon edges rasterise to whole pixels
    assert coverage.occupied(cars((0, 75, 40, 120)))["B0"] is False  # matching keeps it to one bay


def test_a_car_at_an_angle_straddling_two_bays_fills_the_one_it_is_mostly_in():
    rule = OccupancyRule(BAYS, rule="footprint", min_overlap=0.5)
    assert rule.occupied(cars((24, 80, 64, 120))) == {"B1": False, "B2": True}  # 16 px in B1, 24 px in B2
    assert rule.occupied(cars((16, 80, 56, 120))) == {"B1": True, "B2": False}  # 24 px in B1, 16 px in B2
    # Dead centre: one bay only (never both), and below min_overlap none.
    assert sum(rule.occupied(cars((20, 80, 60, 120))).values()) == 1
    assert rule.occupied(cars((20, 80, 60, 120))) != {"B1": True, "B2": True}
    strict = OccupancyRule(BAYS, rule="footprint", min_overlap=0.6)
    assert strict.occupied(cars((20, 80, 60, 120))) == {"B1": False, "B2": False}


def test_two_cars_each_get_their_own_bay_even_when_both_lean_into_one():
    # Car 1 is wholly in B1; car 2 is 55 % in B1 and 45 % in B2: matching gives car 2 to B2.
    rule = OccupancyRule(BAYS, rule="footprint", min_overlap=0.4)
    assert rule.occupied(cars((0, 80, 40, 120), (18, 80, 58, 120))) == {"B1": True, "B2": True}


def test_a_car_in_shadow_counts_from_its_own_confidence_threshold():
    faint = cars((0, 80, 40, 120), confidence=0.15)
    assert OccupancyRule(BAYS, min_confidence=0.1).occupied(faint) == {"B1": True, "B2": False}
    assert OccupancyRule(BAYS, min_confidence=0.2).occupied(faint) == {"B1": False, "B2": False}


def test_a_car_driving_through_the_aisle_occupies_nothing():
    rule = OccupancyRule(BAYS, rule="footprint", min_overlap=0.5)
    # Driving along the row in the aisle below the bays: its footprint (y 130..150) is outside them.
    for x in range(0, 80, 10):
        assert rule.occupied(cars((x, 110, x + 40, 150))) == {"B1": False, "B2": False}


def test_a_car_seen_on_a_single_frame_occupies_its_bay_without_a_track():
    parking = ParkingMonitor(BAYS, debounce_s=0.0)
    events = parking.update(cars((0, 80, 40, 120)), 0, 0.0)  # no tracker_id at all
    assert [(e.to_record()["event"], e.to_record()["slot"]) for e in events] == [("slot_occupied", "B1")]


def test_debounce_on_irregular_snapshot_times():
    parking = ParkingMonitor(BAYS, debounce_s=120.0)
    parked, empty = cars((0, 80, 40, 120)), cars()
    times_s = [0.0, 30.0, 200.0, 230.0, 400.0, 410.0, 700.0]
    frames = [empty, parked, parked, empty, parked, parked, parked]
    events = [e for i, (t, d) in enumerate(zip(times_s, frames, strict=True)) for e in parking.update(d, i, t)]
    # Seen at 30 s and still at 200 s (170 s >= 120 s): occupied, dated 30 s. Gone at 230 s but back at 400 s:
    # the 170 s gap is one empty snapshot, which has not held 120 s when the car is seen again, so no change.
    assert [(e.to_record()["event"], e.timestamp_s) for e in events] == [("slot_occupied", 30.0)]


def test_centre_rule_puts_a_straddling_car_in_the_bay_holding_its_centre_and_a_passing_one_nowhere():
    rule = OccupancyRule(BAYS, rule="center")
    assert rule.occupied(cars((24, 80, 64, 120))) == {"B1": False, "B2": True}  # centre (44, 100)
    assert rule.occupied(cars((0, 80, 36, 120))) == {"B1": True, "B2": False}  # centre (18, 100)
    assert rule.occupied(cars((0, 112, 40, 152))) == {"B1": False, "B2": False}  # in the aisle, centre y 132
    # Two boxes on one bay (a car and a stray box on it) fill that bay only.
    assert rule.occupied(cars((0, 80, 40, 120), (5, 85, 35, 118))) == {"B1": True, "B2": False}


def test_slots_make_the_detector_run_at_full_size_and_down_to_the_parking_threshold():
    slots = [SlotConfig("B1", [(0, 100), (40, 100), (40, 120)])]
    model = model_for_parking(ModelConfig(imgsz=640, conf=0.1), ParkingConfig(slots=slots), (1280, 720))
    assert (model.imgsz, model.conf) == (1280, 0.005)
    parking = ParkingConfig(slots=slots, full_resolution=False, min_confidence=0.2)
    assert model_for_parking(ModelConfig(imgsz=640, conf=0.1), parking, (1280, 720)).imgsz == 640
    assert model_for_parking(ModelConfig(imgsz=640, conf=0.1), parking, (1280, 720)).conf == 0.1
    assert model_for_parking(ModelConfig(imgsz=640), ParkingConfig(), (1280, 720)).imgsz == 640  # no slots


def test_a_box_much_smaller_than_the_bay_cannot_occupy_it():
    # Bays are 40 x 20 px (about 861 px as rasterised). A stain or a person boxed at low confidence, 12 x 10 px,
    # with its centre in B1, is 0.14 of the bay; a small car seen far away, 24 x 12 px, is 0.33 of it.
    rule = OccupancyRule(BAYS, rule="center", min_confidence=0.005)
    stain = cars((14, 105, 26, 115), confidence=0.01)
    small_car = cars((8, 104, 32, 116), confidence=0.01)
    assert rule.occupied(stain) == {"B1": False, "B2": False}
    assert rule.occupied(small_car) == {"B1": True, "B2": False}
    assert OccupancyRule(BAYS, min_box_to_bay_area=0.0).occupied(stain) == {"B1": True, "B2": False}


def test_a_fragment_of_a_parked_car_does_not_fill_the_bay_beside_it():
    # A car in B1 boxed whole (0.9) and again as a fragment (0.01) whose centre lies in B2: the one-to-one
    # matching would give the fragment B2; its size (10 x 14 px, 0.16 of a bay) keeps B2 free.
    rule = OccupancyRule(BAYS, rule="center")
    whole = (0, 96, 44, 122)
    fragment = (38, 98, 48, 112)
    detections = sv.Detections(xyxy=np.array([whole, fragment], float), confidence=np.array([0.9, 0.01]))
    assert rule.occupied(detections) == {"B1": True, "B2": False}
    assert OccupancyRule(BAYS, min_box_to_bay_area=0.0).occupied(detections) == {"B1": True, "B2": True}
