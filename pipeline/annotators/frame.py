"""One object that draws everything on a frame, composed of supervision annotators and ours.

Example:
    >>> import numpy as np
    >>> annotator = FrameAnnotator(DrawConfig(), show_masks=False)
    >>> detections = sv.Detections(
    ...     xyxy=np.array([[10.0, 10.0, 60.0, 40.0]]), confidence=np.array([0.9]), class_id=np.array([2]),
    ...     tracker_id=np.array([3]), data={"class_name": np.array(["car"])})
    >>> image = annotator.annotate(np.zeros((120, 160, 3), np.uint8), detections, 0.0, AnalyticsView())
    >>> annotator.labels(detections)
    ['#3 car 0.90']
"""

from __future__ import annotations

import numpy as np
import supervision as sv

from pipeline.analytics.lines import class_names_of
from pipeline.analytics.views import AnalyticsView
from pipeline.annotators.movements import MovementAnnotator
from pipeline.annotators.overlays import LineCountAnnotator, SlotAnnotator, ZoneCountAnnotator
from pipeline.annotators.trails import FadingTraceAnnotator
from pipeline.config import DrawConfig


class FrameAnnotator:
    """Draws masks, fading trails, boxes, ``#<track_id> <class> <conf>`` labels, lines and zones.

    Colors follow the track ID, so an object keeps its color across boxes, masks and trails.

    Args:
        config: What to draw.
        show_masks: Whether the model produces masks (segmentation) and they should be drawn.
    """

    def __init__(self, config: DrawConfig, show_masks: bool) -> None:
        lookup = sv.ColorLookup.TRACK
        self._masks = (
            sv.MaskAnnotator(opacity=config.mask_opacity, color_lookup=lookup) if show_masks and config.masks else None
        )
        self._trails = (
            FadingTraceAnnotator(trail_seconds=config.trail_seconds, thickness=config.trail_thickness)
            if config.trails
            else None
        )
        self._boxes = sv.BoxAnnotator(thickness=2, color_lookup=lookup) if config.boxes else None
        self._labels = (
            sv.LabelAnnotator(text_scale=0.45, text_padding=3, color_lookup=lookup, smart_position=True)
            if config.labels
            else None
        )
        self._lines = LineCountAnnotator()
        self._zones = ZoneCountAnnotator()
        self._slots = SlotAnnotator()
        self._movements = MovementAnnotator()

    @staticmethod
    def labels(detections: sv.Detections) -> list[str]:
        """``#<track_id> <class> <conf>`` for each detection."""
        confidences = detections.confidence if detections.confidence is not None else [None] * len(detections)
        track_ids = detections.tracker_id if detections.tracker_id is not None else [None] * len(detections)
        return [
            " ".join(
                part
                for part in (
                    f"#{track_id}" if track_id is not None else "",
                    class_name,
                    f"{confidence:.2f}" if confidence is not None else "",
                )
                if part
            )
            for track_id, class_name, confidence in zip(track_ids, class_names_of(detections), confidences, strict=True)
        ]

    def annotate(
        self,
        scene: np.ndarray,
        detections: sv.Detections,
        timestamp_s: float,
        analytics: AnalyticsView,
    ) -> np.ndarray:
        """Draw one frame's tracked ``detections`` and the counters' state on ``scene`` (in place)."""
        self._zones.annotate(scene, analytics.zones)
        if analytics.parking is not None:
            self._slots.annotate(scene, analytics.parking)
        if self._masks is not None and detections.mask is not None:
            self._masks.annotate(scene, detections)
        if self._trails is not None:
            self._trails.annotate(scene, detections, timestamp_s)
        if self._boxes is not None:
            self._boxes.annotate(scene, detections)
        self._lines.annotate(scene, analytics.lines)
        if analytics.movements is not None:
            self._movements.annotate(scene, analytics.movements)
        if self._labels is not None:
            self._labels.annotate(scene, detections, labels=self.labels(detections))
        return scene
