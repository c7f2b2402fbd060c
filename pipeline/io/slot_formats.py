"""Parking slots from the files other tools write: PKLot XML, Ultralytics' parking points JSON, LabelMe
JSON, CVAT XML (images 1.1) and CNRPark-EXT camera CSV, as slot name to polygon in pixels.

Example:
    >>> slots_from_text('[{"points": [[0, 0], [10, 0], [10, 5], [0, 5]]}]', "bounding_boxes.json")
    {'P1': [(0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0)]}
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.geometry import Point

FORMATS = "PKLot XML, CVAT XML, LabelMe JSON, Ultralytics parking points JSON or CNRPark-EXT camera CSV"

CNRPARK_FRAME = (2592, 1944)
"""CNRPark-EXT's camera CSV files (``SlotId,X,Y,W,H``) give boxes in the cameras' full 2592x1944 frame."""


def read_slot_file(path: str | Path, frame_size: tuple[int, int] | None = None) -> dict[str, list[Point]]:
    """Slots from a file in one of :data:`FORMATS` (told apart by their content).

    Args:
        path: The file.
        frame_size: (width, height) of the images the slots are for; a CNRPark-EXT CSV needs it to
            scale its boxes from the 2592x1944 frame they are given in.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read slots file ({getattr(exc, 'strerror', None) or exc})") from None
    return slots_from_text(text, str(path), frame_size)


def slots_from_text(text: str, origin: str, frame_size: tuple[int, int] | None = None) -> dict[str, list[Point]]:
    """Slots from the text of a slots file; ``origin`` names it in errors.

    Example (a CNRPark-EXT camera CSV, onto its 1000x750 images):
        >>> slots_from_text("SlotId,X,Y,W,H\\n211,1296,972,1296,972\\n", "camera8.csv", (1000, 750))
        {'211': [(500.0, 375.0), (1000.0, 375.0), (1000.0, 750.0), (500.0, 750.0)]}
    """
    try:
        if text.lstrip().startswith("<"):
            slots = _from_xml(ET.fromstring(text))
        elif text.lstrip().lower().startswith("slotid"):
            slots = _from_cnrpark_csv(text, origin, frame_size)
        else:
            slots = _from_json(json.loads(text))
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


def _from_cnrpark_csv(text: str, origin: str, frame_size: tuple[int, int] | None) -> dict[str, list[Point]]:
    if frame_size is None:
        raise ConfigError(f"{origin}: a CNRPark-EXT slots CSV needs the size of the images it is for")
    sx, sy = frame_size[0] / CNRPARK_FRAME[0], frame_size[1] / CNRPARK_FRAME[1]
    slots: dict[str, list[Point]] = {}
    for row in csv.DictReader(io.StringIO(text.strip())):
        x, y, w, h = (float(row[key]) for key in ("X", "Y", "W", "H"))
        corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        _unique(slots, row["SlotId"], [(round(cx * sx, 1), round(cy * sy, 1)) for cx, cy in corners])
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
