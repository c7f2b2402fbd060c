"""The tracker's association costs and assignment, on boxes worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.tracking.kalman import KalmanFilter
from pipeline.tracking.matching import IouCost, box_iou, fuse_score, linear_assignment
from pipeline.tracking.motion import TENTATIVE_THRESH, ReachCost
from pipeline.tracking.track import Detection, Track, TrackState


def test_iou_of_boxes_worked_out_by_hand():
    square = [0, 0, 10, 10]
    others = [
        [0, 0, 10, 10],  # the same box: 1
        [0, 0, 10, 5],  # its upper half: 50 / 100
        [5, 5, 15, 15],  # a corner: 25 / (100 + 100 - 25)
        [10, 0, 20, 10],  # touching along an edge: no area in common
        [30, 30, 40, 40],  # apart
    ]
    np.testing.assert_allclose(box_iou(np.array([square]), np.array(others)), [[1, 0.5, 1 / 7, 0, 0]], rtol=1e-6)


def test_iou_of_no_boxes_has_the_shape_of_the_pairs():
    assert box_iou(np.empty((0, 4)), np.array([[0, 0, 1, 1]])).shape == (0, 1)
    assert box_iou(np.array([[0, 0, 1, 1]]), np.empty((0, 4))).shape == (1, 0)


def test_score_fusion_scales_the_overlap_by_the_detections_confidence():
    # IoU 0.5 with a detection of score 0.8 is a similarity of 0.4: a cost of 0.6; at score 0.5, 0.75.
    fused = fuse_score(np.array([[0.5, 0.5]], dtype=np.float32), np.array([0.8, 0.5], dtype=np.float32))
    np.testing.assert_allclose(fused, [[0.6, 0.75]], rtol=1e-6)


def test_assignment_minimises_the_total_cost_not_each_row_greedily():
    # Row 0 is cheapest with column 0 (0.1), but then row 1 pays 0.9: 1.0 in all. Crossed: 0.35.
    matches, unmatched_rows, unmatched_columns = linear_assignment(np.array([[0.1, 0.2], [0.15, 0.9]]), thresh=0.8)
    assert sorted(matches) == [[0, 1], [1, 0]]
    assert len(unmatched_rows) == 0 and len(unmatched_columns) == 0


def test_assignment_leaves_pairs_above_the_threshold_unmatched():
    # Alone, track 1's only options cost more than 0.8: it stays unmatched, as does detection 1.
    matches, unmatched_rows, unmatched_columns = linear_assignment(np.array([[0.3, 0.95], [0.9, 0.85]]), thresh=0.8)
    assert matches == [[0, 0]]
    assert unmatched_rows.tolist() == [1] and unmatched_columns.tolist() == [1]
    # A third track, cheapest with detection 0 (0.2), takes detection 1 (0.6) instead: 0.3 + 0.6 and one
    # track left over beats 0.2 and two tracks and a detection left over (each costs half the threshold).
    cost = np.array([[0.3, 0.95], [0.9, 0.85], [0.2, 0.6]])
    matches, unmatched_rows, unmatched_columns = linear_assignment(cost, thresh=0.8)
    assert sorted(matches) == [[0, 0], [2, 1]]
    assert unmatched_rows.tolist() == [1] and unmatched_columns.tolist() == []
    matches, unmatched_rows, unmatched_columns = linear_assignment(np.empty((2, 0)), thresh=0.8)
    assert matches == [] and unmatched_rows.tolist() == [0, 1] and unmatched_columns.tolist() == []


def detection(x: float, y: float, width: float, height: float, step: int, score: float = 1.0) -> Detection:
    return Detection(np.array([x, y, width, height], dtype=np.float32), np.float32(score), 0, step)


def test_a_track_seen_once_is_also_matched_by_the_distance_it_could_have_covered():
    # A 40 x 20 box seen once at 5 fps, then 30 px (0.75 of its width) further right on the next
    # frame: at 10 sizes a second the reach is 10 * 0.2 = 2 sizes, so the distance cost is
    # 0.7 * 0.75 / 2. The boxes overlap 10 x 20 px of 1400: an IoU cost of 1 - 1 / 7 = 0.857.
    seen_once = Track(1, detection(100, 100, 40, 20, step=1), KalmanFilter(), frame=1, state=TrackState.NEW)
    cost = ReachCost(IouCost(fuse_scores=False), max_speed_sizes_per_s=10, frame_s=0.2)
    assert cost([seen_once], [detection(130, 100, 40, 20, step=2)])[0, 0] == pytest.approx(0.7 * 0.75 / 2, rel=1e-6)
    # Two frames later the reach is twice as long; at the full reach the cost is the threshold.
    assert cost([seen_once], [detection(260, 100, 40, 20, step=3)])[0, 0] == pytest.approx(TENTATIVE_THRESH, rel=1e-6)


def test_a_track_seen_twice_is_matched_by_overlap_alone():
    track = Track(1, detection(100, 100, 40, 20, step=1), KalmanFilter(), frame=1, state=TrackState.NEW)
    track.reactivate(detection(100, 100, 40, 20, step=2), frame=2)
    cost = ReachCost(IouCost(fuse_scores=False), max_speed_sizes_per_s=10, frame_s=0.2)
    assert cost([track], [detection(130, 100, 40, 20, step=3)])[0, 0] == pytest.approx(6 / 7, rel=1e-6)
