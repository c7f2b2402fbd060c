"""The frame annotator draws masks, boxes, labels, lines and zones where they belong."""

from __future__ import annotations

import numpy as np
import supervision as sv

from pipeline.analytics import Analytics
from pipeline.annotators.frame import FrameAnnotator
from pipeline.config import DrawConfig, LineConfig, ZoneConfig


def one_object() -> sv.Detections:
    mask = np.zeros((1, 200, 300), bool)
    mask[0, 70:130, 70:130] = True
    return sv.Detections(
        xyxy=np.array([[50.0, 50.0, 150.0, 150.0]]),
        mask=mask,
        confidence=np.array([0.87]),
        class_id=np.array([2]),
        tracker_id=np.array([12]),
        data={"class_name": np.array(["car"])},
    )


def draw(config: DrawConfig, show_masks: bool, analytics: Analytics | None = None) -> np.ndarray:
    scene = np.full((200, 300, 3), 100, np.uint8)
    analytics = analytics or Analytics([], [], forget_after_s=1.0)
    return FrameAnnotator(config, show_masks=show_masks).annotate(scene, one_object(), 0.0, analytics.view())


ONLY_MASKS = DrawConfig(boxes=False, labels=False, trails=False)


def test_masks_tint_the_object_and_nothing_else():
    scene = draw(ONLY_MASKS, show_masks=True)
    assert (scene[75:125, 75:125] != 100).any(axis=2).all()
    outside = np.ones((200, 300), bool)
    outside[70:130, 70:130] = False
    assert (scene[outside] == 100).all()


def test_masks_are_not_drawn_for_detection_or_when_disabled():
    assert (draw(ONLY_MASKS, show_masks=False) == 100).all()
    assert (draw(DrawConfig(boxes=False, labels=False, trails=False, masks=False), show_masks=True) == 100).all()


def test_box_and_label():
    scene = draw(DrawConfig(masks=False, trails=False, labels=False), show_masks=False)
    assert (scene[50, 60:140] != 100).any(axis=1).all()  # top edge of the box
    assert (scene[100, 100] == 100).all()  # inside the box untouched
    assert FrameAnnotator.labels(one_object()) == ["#12 car 0.87"]
    labelled = draw(DrawConfig(masks=False, trails=False, boxes=False), show_masks=False)
    assert (labelled != 100).any()


def test_lines_and_zones_are_drawn_with_counts():
    analytics = Analytics(
        [LineConfig("main", (10, 180), (290, 180))],
        [ZoneConfig("z", [(200, 10), (290, 10), (290, 60), (200, 60)])],
        1.0,
    )
    scene = draw(DrawConfig(masks=False, trails=False, boxes=False, labels=False), False, analytics)
    assert (scene[180, 20] != 100).any()  # on the line
    assert (scene[30, 205] != 100).any()  # zone fill
    assert (scene[120, 20] == 100).all()  # elsewhere untouched
