"""The ``Point`` type shared by the config and the analytics stages, and checks that user-drawn
geometry means something: zones are simple polygons with an area, and a speed calibration's four
point pairs define a usable homography.

Each check returns what is wrong as a short phrase (for a config error naming the key), or None.
Tolerances are relative to the points' own spread, so pixel and normalized (0..1) coordinates are
judged alike.

Example:
    >>> polygon_problem([(0, 0), (10, 0), (10, 10), (0, 10)]) is None
    True
    >>> polygon_problem([(0, 0), (10, 10), (10, 0), (0, 10)])  # a bow tie
    'the polygon crosses itself (edge 0 meets edge 2)'
    >>> calibration_problem([(0, 0), (10, 0), (20, 0), (30, 1)], [(0, 0), (1, 0), (1, 1), (0, 1)])
    'image_points: three of the four points lie on one line; give four corners of a quadrilateral'
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cv2
import numpy as np

Point = tuple[float, float]
"""An (x, y) position: pixels in the image, or metres on the ground plane."""

_FLAT = 1e-6
"""A triangle or polygon whose area is below this fraction of its bounding box's squared diagonal is flat."""
MAX_CONDITION = 1e4
"""A calibration homography (on normalized points) with a larger condition number is too close to
degenerate: a fronto-parallel square gives about 6, a road narrowing to 2 px at the top about 300."""


def cross(origin: Point, a: Point, b: Point) -> float:
    """z of (a - origin) x (b - origin): > 0 when b is on the positive side of origin->a."""
    return (a[0] - origin[0]) * (b[1] - origin[1]) - (a[1] - origin[1]) * (b[0] - origin[0])


def _scale_sq(points: Sequence[Point]) -> float:
    array = np.asarray(points, float)
    return float(((array.max(axis=0) - array.min(axis=0)) ** 2).sum()) or 1.0


def _segments_meet(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Whether segments p1p2 and q1q2 cross or touch."""
    d1, d2, d3, d4 = cross(q1, q2, p1), cross(q1, q2, p2), cross(p1, p2, q1), cross(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0) and d1 != 0 and d2 != 0) and ((d3 > 0) != (d4 > 0) and d3 != 0 and d4 != 0):
        return True

    def on_segment(a: Point, b: Point, c: Point) -> bool:  # c on segment ab, given the three are collinear
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    return (
        (d1 == 0 and on_segment(q1, q2, p1))
        or (d2 == 0 and on_segment(q1, q2, p2))
        or (d3 == 0 and on_segment(p1, p2, q1))
        or (d4 == 0 and on_segment(p1, p2, q2))
    )


def polygon_problem(points: Sequence[Point]) -> str | None:
    """What makes ``points`` not a simple polygon with an area (edges crossing, zero area), or None."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i, j in itertools.combinations(range(n), 2):
        if j == i + 1 or (i == 0 and j == n - 1):  # neighbours share a vertex
            continue
        if _segments_meet(*edges[i], *edges[j]):
            return f"the polygon crosses itself (edge {i} meets edge {j})"
    area = 0.5 * abs(sum(cross((0.0, 0.0), points[i], points[(i + 1) % n]) for i in range(n)))
    if area <= _FLAT * _scale_sq(points):
        return "the polygon has no area (its points are on one line or repeated)"
    return None


def _three_collinear(points: Sequence[Point]) -> bool:
    scale_sq = _scale_sq(points)
    return any(abs(cross(a, b, c)) / 2 <= _FLAT * scale_sq for a, b, c in itertools.combinations(points, 3))


def _normalizing(points: np.ndarray) -> np.ndarray:
    """Hartley's normalization: centroid to the origin, mean distance sqrt(2)."""
    centre = points.mean(axis=0)
    scale = np.sqrt(2) / (np.linalg.norm(points - centre, axis=1).mean() or 1.0)
    return np.array([[scale, 0, -scale * centre[0]], [0, scale, -scale * centre[1]], [0, 0, 1]])


def calibration_problem(image_points: Sequence[Point], world_points: Sequence[Point]) -> str | None:
    """What makes four image/ground point pairs a bad speed calibration, or None: three points on one
    line, a near-degenerate homography, or the pairs in different orders (the mapping folds the
    quadrilateral through the horizon)."""
    for key, points in (("image_points", image_points), ("world_points", world_points)):
        if _three_collinear(points):
            return f"{key}: three of the four points lie on one line; give four corners of a quadrilateral"
    image, world = np.asarray(image_points, float), np.asarray(world_points, float)
    t_image, t_world = _normalizing(image), _normalizing(world)
    moved_image = (t_image @ np.c_[image, np.ones(4)].T).T[:, :2]
    moved_world = (t_world @ np.c_[world, np.ones(4)].T).T[:, :2]
    homography = cv2.getPerspectiveTransform(moved_image.astype(np.float32), moved_world.astype(np.float32))
    condition = float(np.linalg.cond(homography))
    if not np.isfinite(condition) or condition > MAX_CONDITION:
        return f"the image and world points give a degenerate homography (condition number {condition:.1e})"
    w = homography[2] @ np.c_[moved_image, np.ones(4)].T
    if not ((w > 0).all() or (w < 0).all()):
        return "image_points and world_points are not in the same order (the mapping folds through the horizon)"
    return None


def containment(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """How much of the smaller box of each pair lies inside the other: intersection over the smaller area.

    Two boxes that overlap little by IoU can still lie one inside the other (a lorry's load box inside
    the lorry's, a rider's box over their bicycle's); this measure is 1 for those.

    Args:
        boxes_a: N x 4 boxes (x1, y1, x2, y2).
        boxes_b: M x 4 boxes.

    Returns:
        N x M values from 0 (apart) to 1 (one inside the other); 0 for boxes without area.

    Example:
        >>> containment(np.array([[0, 0, 10, 10]]), np.array([[2, 2, 4, 4], [5, 0, 15, 10]])).tolist()
        [[1.0, 0.5]]
    """
    a = np.asarray(boxes_a, dtype=float).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=float).reshape(-1, 4)
    width = (np.minimum(a[:, None, 2], b[:, 2]) - np.maximum(a[:, None, 0], b[:, 0])).clip(0)
    height = (np.minimum(a[:, None, 3], b[:, 3]) - np.maximum(a[:, None, 1], b[:, 1])).clip(0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    smaller = np.minimum(area_a[:, None], area_b)
    return np.divide(width * height, smaller, out=np.zeros_like(smaller), where=smaller > 0)
