"""Drawing at the annotated video's size rather than the source's: the frame is scaled first and the
boxes, masks, lines and zones with it, so a 1080p camera's video costs what a smaller one's does, in
drawing as in encoding. Counting never sees this: it runs on the source's frame and boxes.

Example:
    >>> video_size((1920, 1080), 960), video_size((640, 480), 960), video_size((1920, 1080), 0)
    ((960, 540), (640, 480), (1920, 1080))
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import supervision as sv

from pipeline.analytics.views import AnalyticsView, MovementsView, ParkingView, ZoneView
from pipeline.annotators.frame import FrameAnnotator


def video_size(source_size: tuple[int, int], max_width: int) -> tuple[int, int]:
    """The annotated video's (width, height): the source's, or scaled down to ``max_width`` at the
    same aspect ratio (height rounded to even, as H.264's 4:2:0 wants) when the source is wider;
    ``max_width`` 0 keeps the source's size."""
    width, height = source_size
    if max_width <= 0 or width <= max_width:
        return source_size
    return max_width, max(2, 2 * int(height * max_width / width / 2 + 0.5))  # halves up


def scaled_detections(detections: sv.Detections, size: tuple[int, int], scale: tuple[float, float]) -> sv.Detections:
    """A copy of ``detections`` with boxes multiplied by ``scale`` (x, y) and masks resized to ``size``
    (width, height); the other fields shared."""
    scaled = dataclasses.replace(detections, xyxy=detections.xyxy * np.array([*scale, *scale]))
    if detections.mask is not None and len(detections):
        # cv2.resize takes up to 512 channels at once: every mask in one call
        stacked = np.ascontiguousarray(detections.mask.transpose(1, 2, 0), dtype=np.uint8)
        masks = [
            cv2.resize(stacked[:, :, start : start + 512], size, interpolation=cv2.INTER_NEAREST)
            for start in range(0, stacked.shape[2], 512)
        ]
        resized = np.concatenate([m.reshape(size[1], size[0], -1) for m in masks], axis=2)
        scaled.mask = resized.transpose(2, 0, 1).astype(bool)
    return scaled


def scaled_view(view: AnalyticsView, scale: tuple[float, float]) -> AnalyticsView:
    """``view`` with its lines, zones, bays, approaches, gates and crosswalks multiplied by ``scale`` (x, y).

    Example:
        >>> from pipeline.analytics.views import LineView
        >>> line = LineView("main", (100.0, 50.0), (300.0, 50.0), in_total=3, out_total=1)
        >>> scaled_view(AnalyticsView(lines=(line,)), (0.5, 0.5)).lines[0]
        LineView(name='main', start=(50.0, 25.0), end=(150.0, 25.0), in_total=3, out_total=1)
    """
    factor = np.array(scale)

    def point(xy: tuple[float, float]) -> tuple[float, float]:
        return (float(xy[0] * scale[0]), float(xy[1] * scale[1]))

    lines = tuple(dataclasses.replace(line, start=point(line.start), end=point(line.end)) for line in view.lines)
    zones = tuple(ZoneView(zone.name, zone.polygon * factor, zone.count) for zone in view.zones)
    parking = view.parking
    if parking is not None:
        parking = ParkingView({k: p * factor for k, p in parking.polygons.items()}, parking.occupied)
    movements = view.movements
    if movements is not None:
        movements = MovementsView(
            {k: p * factor for k, p in movements.approaches.items()},
            movements.counts,
            {k: g * factor for k, g in movements.gates.items()},
            tuple(dataclasses.replace(walk, points=walk.points * factor) for walk in movements.crosswalks),
        )
    return AnalyticsView(lines, zones, parking, movements)


def draw_at_size(
    annotator: FrameAnnotator,
    image: np.ndarray,
    detections: sv.Detections,
    timestamp_s: float,
    view: AnalyticsView,
    size: tuple[int, int],
) -> np.ndarray:
    """``image`` with everything drawn, at ``size`` (width, height): scaled first, then drawn on
    (``image`` itself drawn on in place when it has that size already)."""
    height, width = image.shape[:2]
    if (width, height) == size:
        return annotator.annotate(image, detections, timestamp_s, view)
    scale = (size[0] / width, size[1] / height)
    # INTER_AREA by a whole factor costs little; by another factor it costs 4x INTER_LINEAR's (1080p to 720p)
    whole = width % size[0] == 0 and height % size[1] == 0 and width // size[0] == height // size[1]
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if whole else cv2.INTER_LINEAR)
    return annotator.annotate(small, scaled_detections(detections, size, scale), timestamp_s, scaled_view(view, scale))
