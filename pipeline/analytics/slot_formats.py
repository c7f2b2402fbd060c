"""Parking slots from the files other tools write: PKLot XML, Ultralytics' parking points JSON, LabelMe
JSON and CVAT XML (images 1.1), as slot name to polygon in pixels.

Example:
    >>> slots_from_text('[{"points": [[0, 0], [10, 0], [10, 5], [0, 5]]}]', "bounding_boxes.json")
    {'P1': [(0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0)]}
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.geometry import Point

FORMATS = "PKLot XML, CVAT XML, LabelMe JSON or Ultralytics parking points JSON"


def read_slot_file(path: str | Path) -> dict[str, list[Point]]:
    """Slots from a file in one of :data:`FORMATS` (told apart by their content)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read slots file ({getattr(exc, 'strerror', None) or exc})") from None
    return slots_from_text(text, str(path))


def slots_from_text(text: str, origin: str) -> dict[str, list[Point]]:
    """Slots from the text of a slots file; ``origin`` names it in errors."""
    try:
        slots = _from_xml(ET.fromstring(text)) if text.lstrip().startswith("<") else _from_json(json.loads(text))
    except (ET.ParseError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{origin}: cannot parse slots file ({exc})") from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ConfigError(f"{origin}: not a {FORMATS} file ({type(exc).__name__}: {exc})") from None
    if not slots:
        raise ConfigError(f"{origin}: no slots found (expected a {FORMATS} file)")
    bad = [name for name, polygon in slots.items() if len(polygon) < 3]
    if bad:
        raise ConfigError(f"{origin}: slots with fewer than 3 points: {', '.join(bad)}")
    return slots


def _points(pairs: Any) -> list[Point]:
    return [(float(x), float(y)) for x, y in pairs]


def _unique(slots: dict[str, list[Point]], name: str, polygon: list[Point]) -> None:
    base, suffix = name, 2
    while name in slots:
        name, suffix = f"{base}_{suffix}", suffix + 1
    slots[name] = polygon


def _from_json(data: Any) -> dict[str, list[Point]]:
    slots: dict[str, list[Point]] = {}
    if isinstance(data, dict) and "shapes" in data:  # LabelMe
        for index, shape in enumerate(data["shapes"], 1):
            points = _points(shape["points"])
            if shape.get("shape_type") == "rectangle" and len(points) == 2:
                (x1, y1), (x2, y2) = points
                points = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
            _unique(slots, str(shape.get("label") or f"P{index}"), points)
        return slots
    for index, item in enumerate(data, 1):  # Ultralytics: [{"points": [[x, y], ...]}, ...]
        _unique(slots, str(item.get("name") or f"P{index}"), _points(item["points"]))
    return slots


def _from_xml(root: ET.Element) -> dict[str, list[Point]]:
    slots: dict[str, list[Point]] = {}
    if root.tag == "parking":  # PKLot: <space id="1"><contour><point x= y=/>...
        for space in root.iter("space"):
            contour = space.find("contour")
            points = contour.findall("point") if contour is not None else []
            _unique(slots, space.attrib["id"], [(float(p.attrib["x"]), float(p.attrib["y"])) for p in points])
        return slots
    image = root.find(".//image")  # CVAT images 1.1: the first image's polygons and boxes
    if image is None:
        return slots
    for index, shape in enumerate(image, 1):
        label = shape.attrib.get("label") or "P"
        name = f"{label}{index}" if label.lower() in ("slot", "space", "parking", "p") else label
        if shape.tag == "polygon":
            _unique(slots, name, _points(pair.split(",") for pair in shape.attrib["points"].split(";")))
        elif shape.tag == "box":
            x1, y1, x2, y2 = (float(shape.attrib[k]) for k in ("xtl", "ytl", "xbr", "ybr"))
            _unique(slots, name, [(x1, y1), (x2, y1), (x2, y2), (x1, y2)])
    return slots
