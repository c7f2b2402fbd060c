"""Counting lines and zones drawn with their live counts.

Example:
    >>> import numpy as np
    >>> from pipeline.analytics.views import LineView
    >>> scene = np.zeros((200, 300, 3), np.uint8)
    >>> scene = LineCountAnnotator().annotate(scene, [LineView("main", (10, 100), (290, 100), 3, 1)])
    >>> bool(scene[100, 150].any())
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import supervision as sv

from pipeline.analytics.views import LineView, ParkingView, ZoneView


class LineCountAnnotator:
    """Draws each counting line, an arrow toward its ``in`` side and its ``in``/``out`` totals.

    Args:
        color: Line color.
        thickness: Line width in pixels.
        text_scale: Scale of the count label.
    """

    def __init__(self, color: sv.Color = sv.Color.WHITE, thickness: int = 2, text_scale: float = 0.5) -> None:
        self.color = color
        self.thickness = thickness
        self.text_scale = text_scale

    def annotate(self, scene: np.ndarray, lines: Sequence[LineView]) -> np.ndarray:
        """Draw ``lines`` with their current totals on ``scene`` (in place) and return it."""
        bgr = self.color.as_bgr()
        for line in lines:
            start = np.array(line.start)
            end = np.array(line.end)
            cv2.line(
                scene,
                tuple(start.round().astype(int)),
                tuple(end.round().astype(int)),
                bgr,
                self.thickness,
                cv2.LINE_AA,
            )
            direction = end - start
            normal = np.array([-direction[1], direction[0]]) / np.linalg.norm(direction)  # points to the "in" side
            middle = (start + end) / 2
            cv2.arrowedLine(
                scene,
                tuple(middle.round().astype(int)),
                tuple((middle + 18 * normal).round().astype(int)),
                bgr,
                self.thickness,
                cv2.LINE_AA,
                tipLength=0.4,
            )
            label_at = middle - 16 * normal
            sv.draw_text(
                scene,
                f"{line.name}  in {line.in_total}  out {line.out_total}",
                sv.Point(float(label_at[0]), float(label_at[1])),
                text_color=sv.Color.BLACK,
                text_scale=self.text_scale,
                text_thickness=1,
                text_padding=4,
                background_color=self.color,
            )
        return scene


class ZoneCountAnnotator:
    """Draws each zone as a translucent polygon with its current object count.

    Args:
        palette: Zone colors, by zone index.
        opacity: Fill opacity.
        text_scale: Scale of the count label.
    """

    def __init__(
        self, palette: sv.ColorPalette = sv.ColorPalette.DEFAULT, opacity: float = 0.2, text_scale: float = 0.5
    ) -> None:
        self.palette = palette
        self.opacity = opacity
        self.text_scale = text_scale

    def annotate(self, scene: np.ndarray, zones: Sequence[ZoneView]) -> np.ndarray:
        """Draw ``zones`` with their current counts on ``scene`` (in place) and return it."""
        for index, zone in enumerate(zones):
            color = self.palette.by_idx(index)
            polygon = zone.polygon.round().astype(int)
            sv.draw_filled_polygon(scene, polygon, color, opacity=self.opacity)
            sv.draw_polygon(scene, polygon, color, thickness=2)
            center = polygon.mean(axis=0)
            sv.draw_text(
                scene,
                f"{zone.name}: {zone.count}",
                sv.Point(float(center[0]), float(center[1])),
                text_color=sv.Color.BLACK,
                text_scale=self.text_scale,
                text_thickness=1,
                text_padding=4,
                background_color=color,
            )
        return scene


class SlotAnnotator:
    """Draws parking slots (red when occupied, green when free) and a free/total counter.

    Args:
        opacity: Fill opacity of occupied slots.
        text_scale: Scale of the labels.
    """

    FREE = sv.Color.from_hex("#2ecc71")
    OCCUPIED = sv.Color.from_hex("#e74c3c")

    def __init__(self, opacity: float = 0.3, text_scale: float = 0.5) -> None:
        self.opacity = opacity
        self.text_scale = text_scale

    def annotate(self, scene: np.ndarray, parking: ParkingView) -> np.ndarray:
        """Draw every slot in its debounced state on ``scene`` (in place) and return it."""
        occupied = parking.occupied
        for name, polygon in parking.polygons.items():
            points = polygon.round().astype(int)
            color = self.OCCUPIED if occupied[name] else self.FREE
            if occupied[name]:
                sv.draw_filled_polygon(scene, points, color, opacity=self.opacity)
            sv.draw_polygon(scene, points, color, thickness=2)
        sv.draw_text(
            scene,
            f"free {parking.free_count} / {len(occupied)}",
            sv.Point(80, 20),
            text_color=sv.Color.BLACK,
            text_scale=self.text_scale,
            text_thickness=1,
            text_padding=5,
            background_color=sv.Color.WHITE,
        )
        return scene


def draw_slot_names(scene: np.ndarray, slots: dict[str, list[tuple[float, float]]]) -> np.ndarray:
    """Draw slot outlines and names, for checking a slots file by eye (``vpipe slots``)."""
    for name, polygon in slots.items():
        points = np.asarray(polygon).round().astype(int)
        sv.draw_polygon(scene, points, SlotAnnotator.FREE, thickness=2)
        center = points.mean(axis=0)
        sv.draw_text(
            scene,
            name,
            sv.Point(float(center[0]), float(center[1])),
            text_color=sv.Color.BLACK,
            text_scale=0.5,
            text_thickness=1,
            background_color=SlotAnnotator.FREE,
        )
    return scene
