"""Association costs between tracks and detections, and the assignment that minimises them.

Costs are in float32, as ByteTrack computes them, so that ties and thresholds fall the same way.

Example:
    >>> cost = iou_distance(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [0, 0, 10, 5], [20, 0, 30, 10]]))
    >>> cost.tolist()  # the same box, its upper half (IoU 50 / 100), a box apart
    [[0.0, 0.5, 1.0]]
    >>> matches, unmatched_tracks, unmatched_detections = linear_assignment(cost, thresh=0.8)
    >>> matches, unmatched_tracks.tolist(), unmatched_detections.tolist()
    ([[0, 0]], [], [1, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import lap
import numpy as np

from pipeline.tracking.track import Detection, Track

Cost = Callable[[Sequence[Track], Sequence[Detection]], np.ndarray]
"""The cost of matching each track (rows) with each detection (columns); lower is better."""


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of each box in ``boxes_a`` with each in ``boxes_b`` (x1, y1, x2, y2).

    Args:
        boxes_a: N x 4 boxes.
        boxes_b: M x 4 boxes.

    Returns:
        N x M IoUs in float32 (0 for boxes without area).
    """
    a = np.ascontiguousarray(boxes_a, dtype=np.float32).reshape(-1, 4)
    b = np.ascontiguousarray(boxes_b, dtype=np.float32).reshape(-1, 4)
    ax1, ay1, ax2, ay2 = a.T
    bx1, by1, bx2, by2 = b.T
    inter = (np.minimum(ax2[:, None], bx2) - np.maximum(ax1[:, None], bx1)).clip(0) * (
        np.minimum(ay2[:, None], by2) - np.maximum(ay1[:, None], by1)
    ).clip(0)
    union = (bx2 - bx1) * (by2 - by1) + ((ax2 - ax1) * (ay2 - ay1))[:, None] - inter
    return inter / (union + 1e-7)


def iou_distance(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """``1 - IoU`` of each box in ``boxes_a`` with each in ``boxes_b`` (float32)."""
    return 1 - box_iou(boxes_a, boxes_b)


def track_iou_distance(tracks: Sequence[Track], detections: Sequence[Detection | Track]) -> np.ndarray:
    """:func:`iou_distance` between tracks' predicted boxes and detections' (or other tracks') boxes."""
    return iou_distance(np.array([t.xyxy for t in tracks]), np.array([d.xyxy for d in detections]))


def fuse_score(cost: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ByteTrack's score fusion: the IoU similarity times each detection's score, back as a cost.

    A weak detection then costs more than a confident one at the same overlap.
    """
    return 1 - (1 - cost) * scores[None]


class IouCost:
    """ByteTrack's association cost: IoU distance of the predicted box, optionally fused with scores.

    Args:
        fuse_scores: Multiply the IoU by the detection's score (:func:`fuse_score`).
    """

    def __init__(self, fuse_scores: bool) -> None:
        self.fuse_scores = fuse_scores

    def __call__(self, tracks: Sequence[Track], detections: Sequence[Detection]) -> np.ndarray:
        cost = track_iou_distance(tracks, detections)
        if self.fuse_scores and cost.size:
            cost = fuse_score(cost, np.array([d.score for d in detections]))
        return cost


def linear_assignment(cost: np.ndarray, thresh: float) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """The one-to-one matching of least total cost, leaving pairs costlier than ``thresh`` unmatched.

    Solved with Jonker-Volgenant (``lap.lapjv``), whose tie-breaking ByteTrack's results depend on.

    Args:
        cost: N x M costs, rows to columns.
        thresh: The highest cost a matched pair may have.

    Returns:
        The matched (row, column) pairs, the unmatched rows and the unmatched columns (ascending).
    """
    if cost.size == 0:
        return [], np.arange(cost.shape[0]), np.arange(cost.shape[1])
    _, rows, columns = lap.lapjv(cost, extend_cost=True, cost_limit=thresh)
    matches = [[row, int(column)] for row, column in enumerate(rows) if column >= 0]
    return matches, np.flatnonzero(rows < 0), np.flatnonzero(columns < 0)
