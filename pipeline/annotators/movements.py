"""The origin-destination overlay: approach outlines, an arrow with its count per movement, crosswalks.

Example:
    >>> from pipeline.analytics.views import MovementsView
    >>> view = MovementsView(
    ...     {"W": np.array([[0, 80], [40, 80], [40, 120], [0, 120]]),
    ...      "E": np.array([[260, 80], [300, 80], [300, 120], [260, 120]])},
    ...     {("W", "W"): 0, ("W", "E"): 3, ("E", "W"): 0, ("E", "E"): 0})
    >>> scene = MovementAnnotator().annotate(np.zeros((200, 300, 3), np.uint8), view)
    >>> bool(scene[100 + 8, 150].any()), bool(scene[100 - 8, 150].any())  # W->E drawn right of its way only
    (True, False)
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from pipeline.analytics.views import MovementsView

GATE_ARROW_PX = 18
"""Length of the arrow that shows a gate's ``in`` side."""
TEXT_PADDING_PX = 3
CROSSWALK_COLOR = sv.Color.WHITE
LABEL_GAP_PX = 2
"""Least space between two labels: a label that would touch one drawn before moves down until it does not."""


class MovementAnnotator:
    """Draws each approach's outline and name, and for every movement counted so far an arrow from
    its origin's centre to its destination's (shifted to the right of its way, so ``A->B`` and
    ``B->A`` lie side by side) labelled with its count; a U-turn is a label at the approach. A gate is a
    thick line with an arrow to its ``in`` side. A crosswalk is its line or outline in white, labelled
    with its name and the pedestrians counted on it so far. No label covers another: one that would is
    moved down below it (names first, then crosswalks, then counts).

    Args:
        palette: Colors by origin index.
        offset_px: How far an arrow lies right of the line between the two centres.
        text_scale: Scale of the labels.

    Attributes:
        label_boxes: The labels of the last :meth:`annotate`, each as (x0, y0, x1, y1, text) in pixels.
    """

    def __init__(
        self, palette: sv.ColorPalette = sv.ColorPalette.DEFAULT, offset_px: float = 8.0, text_scale: float = 0.5
    ) -> None:
        self.palette = palette
        self.offset_px = offset_px
        self.text_scale = text_scale
        self.label_boxes: list[tuple[int, int, int, int, str]] = []

    def annotate(self, scene: np.ndarray, view: MovementsView) -> np.ndarray:
        """Draw ``view`` on ``scene`` (in place) and return it."""
        self.label_boxes = []
        colors = {name: self.palette.by_idx(index) for index, name in enumerate(view.approaches)}
        centres = {name: polygon.mean(axis=0) for name, polygon in view.approaches.items()}
        for name, polygon in view.approaches.items():
            sv.draw_polygon(scene, polygon.round().astype(int), colors[name], thickness=1)
            top = polygon[polygon[:, 1].argmin()]
            at = np.array([centres[name][0], top[1] + 12.0])
            if len(polygon) == 2 and name in view.gates:  # a gate alone: its name on the side vehicles come from
                at = centres[name] - _inward(*view.gates[name]) * 14.0
            self._label(scene, name, at, colors[name])
        for name, (start, end) in view.gates.items():
            self._gate(scene, start, end, colors[name])
        for walk in view.crosswalks:
            points = walk.points.round().astype(int)
            if walk.is_line:
                cv2.line(scene, tuple(points[0]), tuple(points[1]), CROSSWALK_COLOR.as_bgr(), 2, cv2.LINE_AA)
            else:
                sv.draw_polygon(scene, points, CROSSWALK_COLOR, thickness=2)
            self._label(scene, f"{walk.name} {walk.count}", walk.points.mean(axis=0), CROSSWALK_COLOR)
        for (origin, destination), count in view.counts.items():
            if count == 0:
                continue
            start, end = centres[origin], centres[destination]
            if origin == destination:
                self._label(scene, f"{origin}->{origin} {count}", start + np.array([0.0, 16.0]), colors[origin])
                continue
            way = (end - start) / np.linalg.norm(end - start)
            right = np.array([-way[1], way[0]]) * self.offset_px  # image y points down: this is the right
            tail, head = start + right + way * 6, end + right - way * 6
            pt = (tuple(tail.round().astype(int)), tuple(head.round().astype(int)))
            cv2.arrowedLine(
                scene,
                *pt,
                colors[origin].as_bgr(),
                2,
                cv2.LINE_AA,
                tipLength=min(0.3, 15 / max(1, np.linalg.norm(head - tail))),
            )
            self._label(scene, str(count), (tail + head) / 2 + right * 1.5, colors[origin])
        return scene

    def _gate(self, scene: np.ndarray, start: np.ndarray, end: np.ndarray, color: sv.Color) -> None:
        """A gate as a thick line with an arrow from its middle to its ``in`` side (its right, toward the
        intersection): the way a vehicle crosses it to enter."""
        a, b = tuple(start.round().astype(int)), tuple(end.round().astype(int))
        cv2.line(scene, a, b, color.as_bgr(), 3, cv2.LINE_AA)
        middle = (start + end) / 2
        tip = middle + _inward(start, end) * GATE_ARROW_PX
        cv2.arrowedLine(
            scene,
            tuple(middle.round().astype(int)),
            tuple(tip.round().astype(int)),
            color.as_bgr(),
            2,
            cv2.LINE_AA,
            tipLength=0.4,
        )

    def _label(self, scene: np.ndarray, text: str, at: np.ndarray, color: sv.Color) -> None:
        (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, self.text_scale, 1)
        x, y = round(float(at[0])), round(float(at[1]))
        box = self._free_box(x - width // 2, y - height // 2, width, height, text)
        self.label_boxes.append(box)
        sv.draw_text(
            scene,
            text,
            sv.Point(box[0] + TEXT_PADDING_PX + width // 2, box[1] + TEXT_PADDING_PX + height // 2),
            text_color=sv.Color.BLACK,
            text_scale=self.text_scale,
            text_thickness=1,
            text_padding=TEXT_PADDING_PX,
            background_color=color,
        )

    def _free_box(self, left: int, top: int, width: int, height: int, text: str) -> tuple[int, int, int, int, str]:
        """The label's box (padding included) at (left, top), moved down below every label it would touch."""
        box = (
            left - TEXT_PADDING_PX,
            top - TEXT_PADDING_PX,
            left + width + TEXT_PADDING_PX,
            top + height + TEXT_PADDING_PX,
        )
        moved = True
        while moved:
            moved = False
            for x0, y0, x1, y1, _ in self.label_boxes:
                gap = LABEL_GAP_PX
                if box[0] < x1 + gap and x0 < box[2] + gap and box[1] < y1 + gap and y0 < box[3] + gap:
                    shift = y1 + gap - box[1]
                    box = (box[0], box[1] + shift, box[2], box[3] + shift)
                    moved = True
        return (*box, text)


def _inward(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The unit normal of a gate toward its ``in`` side: the right of start -> end (image y points down)."""
    way = (end - start) / max(1e-9, float(np.linalg.norm(end - start)))
    return np.array([-way[1], way[0]])
