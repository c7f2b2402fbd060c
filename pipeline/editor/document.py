"""A config file's geometry read and written back in round-trip YAML, keeping every other key and its comments.

The editor page works in source pixels. :class:`ConfigDocument` hands it the file's lines, zones,
inline parking slots, movement approaches and crosswalks in pixels, and writes the page's edits back
in the unit the page chose (``coordinates: pixels`` or ``normalized``). Items the page got from the
file carry their index in the file (``src``), so an edited item keeps its other keys
(``min_crossing_distance``) and comments.

Example:
    >>> doc = ConfigDocument.from_text("# mine\\nmodel: {imgsz: 320}\\nlines: []\\n", "cfg.yaml")
    >>> line = {"name": "gate", "start": [10, 20], "end": [90.04, 20], "lanes": [], "src": None}
    >>> print(doc.to_text(Geometry("pixels", [line], [], [], [], []), 100, 50), end="")
    # mine
    model: {imgsz: 320}
    lines:
      - name: gate
        start: [10, 20]
        end: [90, 20]
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from pipeline.errors import ConfigError
from pipeline.yaml_io import parse_yaml, read_text, yaml_parser

Item = dict[str, Any]
"""One line, lane, zone, slot, approach or crosswalk as the page sends it: ``name``, its points, and ``src``."""

_DIGITS = {"pixels": 1, "normalized": 4}  # 0.1 px; 1e-4 of a 1920 px frame is 0.2 px


@dataclass
class Geometry:
    """What the editor edits, in source pixels.

    Attributes:
        coordinates: The unit the file is (or is to be) written in: ``pixels`` or ``normalized``.
        lines: ``{name, start, end, lanes: [{name, start, end, src}], src}``.
        zones: ``{name, polygon, src}``.
        slots: The inline ``parking.slots``, like zones (slots from ``slots_file`` are not edited).
        approaches: ``movements.approaches``: ``{name, polygon, gate, src}``, polygon or gate None when absent.
        crosswalks: ``movements.crosswalks``: ``{name, line, polygon, src}``, one of line and polygon None.
    """

    coordinates: str
    lines: list[Item]
    zones: list[Item]
    slots: list[Item]
    approaches: list[Item]
    crosswalks: list[Item]

    @classmethod
    def from_json(cls, data: Any) -> Geometry:
        """The page's save request, checked for shape: every item has the points its section needs, as
        numbers (the values are checked by :func:`load_config`)."""
        if not isinstance(data, dict) or data.get("coordinates") not in _DIGITS:
            raise ValueError("expected {coordinates: pixels|normalized, lines, zones, slots, approaches, crosswalks}")
        sections = [data.get(key, []) for key in ("lines", "zones", "slots", "approaches", "crosswalks")]
        if not all(_objects(items) for items in sections):
            raise ValueError("lines, zones, slots, approaches and crosswalks must be lists of objects")
        lines, zones, slots, approaches, crosswalks = sections
        if not all(_objects(line.get("lanes") or []) for line in lines):
            raise ValueError("a line's lanes must be a list of objects")
        segments = lines + [lane for line in lines for lane in line.get("lanes") or []]
        if not all(_point(segment.get("start")) and _point(segment.get("end")) for segment in segments):
            raise ValueError("each line and lane needs start and end points [x, y]")
        if not all(isinstance(p := item.get("polygon"), list) and all(map(_point, p)) for item in zones + slots):
            raise ValueError("each zone and slot needs a polygon of points [x, y]")
        for item in approaches + crosswalks:  # which of them an item needs is load_config's to say
            if not all(_points(item.get(key)) for key in _OPTIONAL_POINTS):
                raise ValueError("an approach's polygon and gate, a crosswalk's line and polygon: null or points")
        return cls(data["coordinates"], *sections)


_OPTIONAL_POINTS = ("polygon", "gate", "line")


def _points(value: Any) -> bool:
    """None, or a list of points."""
    return value is None or (isinstance(value, list) and all(map(_point, value)))


def _objects(items: Any) -> bool:
    return isinstance(items, list) and all(isinstance(item, dict) for item in items)


def _point(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


class ConfigDocument:
    """A YAML config held as round-trip nodes.

    Args:
        root: The file's top-level mapping.
        origin: The file's path, for error messages.
    """

    def __init__(self, root: CommentedMap, origin: str) -> None:
        self.root = root
        self.origin = origin

    @classmethod
    def from_text(cls, text: str, origin: str) -> ConfigDocument:
        """Parse YAML text.

        Raises:
            ConfigError: Not YAML, YAML ``vpipe run`` refuses, or not a mapping at the top level.
        """
        root = parse_yaml(text, origin, _yaml())
        if root is None:
            root = CommentedMap()
        if not isinstance(root, CommentedMap):
            raise ConfigError(f"{origin}: expected a mapping of sections at the top level")
        return cls(root, origin)

    @classmethod
    def read(cls, path: Path) -> ConfigDocument:
        """The file at ``path``, or an empty config when there is none yet.

        Raises:
            ConfigError: Unreadable, not UTF-8 text, not YAML, or not a mapping at the top level.
        """
        return cls.from_text(read_text(path, "config file") if path.exists() else "", str(path))

    @property
    def coordinates(self) -> str:
        value = self.root.get("coordinates", "pixels")
        return value if value in _DIGITS else "pixels"

    def geometry(self, width: int, height: int) -> Geometry:
        """The file's lines, zones, inline slots, approaches and crosswalks in pixels of a ``width`` x
        ``height`` frame.

        Malformed entries are skipped: the page shows what it can, saving reports the rest.
        """
        scale = (width, height) if self.coordinates == "normalized" else (1, 1)
        parking = self.root.get("parking")
        slots = parking.get("slots") if isinstance(parking, dict) else None
        movements = self.root.get("movements")
        movements = movements if isinstance(movements, dict) else {}
        return Geometry(
            self.coordinates,
            _read_items(self.root.get("lines"), ("start", "end"), scale),
            _read_items(self.root.get("zones"), ("polygon",), scale),
            _read_items(slots, ("polygon",), scale),
            _read_items(movements.get("approaches"), (), scale, optional=("polygon", "gate")),
            _read_items(movements.get("crosswalks"), (), scale, optional=("line", "polygon")),
        )

    def to_text(self, geometry: Geometry, width: int, height: int) -> str:
        """The file with ``geometry`` (in pixels of a ``width`` x ``height`` frame) written in."""
        unit = geometry.coordinates
        to_file = _Converter(unit, width, height)
        if unit != self.coordinates:  # speed.image_points share the unit: convert them too
            _convert_speed_points(self.root, _Converter(self.coordinates, width, height), to_file)
        if unit == "normalized" or "coordinates" in self.root:
            self.root["coordinates"] = unit
        _set_section(self.root, "lines", _merge(self.root.get("lines"), geometry.lines, to_file.line))
        _set_section(self.root, "zones", _merge(self.root.get("zones"), geometry.zones, to_file.polygon))
        parking = self.root.get("parking")
        old_slots = parking.get("slots") if isinstance(parking, dict) else None
        slots = _merge(old_slots, geometry.slots, to_file.polygon)
        if slots or old_slots is not None:
            if not isinstance(parking, dict):
                parking = self.root["parking"] = CommentedMap()
            _set_section(parking, "slots", slots)
        movements = self.root.get("movements")
        sections = {
            "approaches": (geometry.approaches, ("polygon", "gate")),
            "crosswalks": (geometry.crosswalks, ("line", "polygon")),
        }
        for key, (items, keys) in sections.items():
            old = movements.get(key) if isinstance(movements, dict) else None
            merged = _merge(old, items, lambda node, item, keys=keys: to_file.optional(node, item, keys))
            if merged or old is not None:
                if not isinstance(movements, dict):
                    movements = self.root["movements"] = CommentedMap()
                _set_section(movements, key, merged)
        stream = io.StringIO()
        _yaml().dump(self.root, stream)
        return stream.getvalue()


def _yaml() -> YAML:
    yaml = yaml_parser("rt")
    yaml.preserve_quotes = True
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)  # "  - name: ..." under its key, as configs/ are written
    yaml.representer.add_representer(type(None), _represent_null)
    return yaml


def _represent_null(representer: Any, data: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")  # not an empty value


class _Converter:
    """Pixels to the file's unit (and back), rounded so a saved file stays readable."""

    def __init__(self, unit: str, width: int, height: int) -> None:
        self.scale = (width, height) if unit == "normalized" else (1, 1)
        self.digits = _DIGITS[unit]

    def point(self, xy: Any) -> CommentedSeq:
        x, y = (_number(float(value) / size, self.digits) for value, size in zip(xy, self.scale, strict=True))
        seq = CommentedSeq([x, y])
        seq.fa.set_flow_style()
        return seq

    def to_pixels(self, xy: Any) -> list[float]:
        return [float(value) * size for value, size in zip(xy, self.scale, strict=True)]

    def points(self, points: Any) -> CommentedSeq:
        seq = CommentedSeq([self.point(p) for p in points])
        seq.fa.set_flow_style()
        return seq

    def polygon(self, node: CommentedMap, item: Item) -> None:
        node["polygon"] = self.points(item["polygon"])

    def optional(self, node: CommentedMap, item: Item, keys: tuple[str, ...]) -> None:
        """Each of ``keys`` the item has points for, written; the others taken out of ``node``."""
        for key in keys:
            if item.get(key) is not None:
                node[key] = self.points(item[key])
            else:
                node.pop(key, None)

    def line(self, node: CommentedMap, item: Item) -> None:
        node["start"], node["end"] = self.point(item["start"]), self.point(item["end"])
        lanes = _merge(node.get("lanes"), item.get("lanes") or [], self.segment)
        _set_section(node, "lanes", lanes)

    def segment(self, node: CommentedMap, item: Item) -> None:
        node["start"], node["end"] = self.point(item["start"]), self.point(item["end"])


def _number(value: float, digits: int) -> float | int:
    rounded = round(value, digits)
    return int(rounded) if rounded == int(rounded) else rounded


def _merge(old: Any, items: list[Item], write: Any) -> CommentedSeq:
    """``items`` as the old sequence (its comments kept), each reusing the node it came from."""
    old_nodes = list(old) if isinstance(old, list) else []
    seq = old if isinstance(old, CommentedSeq) else CommentedSeq()
    item_comments = dict(seq.ca.items)  # the comment above an item is the sequence's, by index
    nodes, comments = [], {}
    for item in items:
        src = item.get("src")
        reuse = isinstance(src, int) and 0 <= src < len(old_nodes) and isinstance(old_nodes[src], CommentedMap)
        node = old_nodes[src] if reuse else CommentedMap()
        node["name"] = str(item.get("name", ""))
        write(node, item)
        if reuse and src in item_comments:
            comments[len(nodes)] = item_comments[src]
        nodes.append(node)
    del seq[:]
    seq.extend(nodes)
    seq.ca.items.clear()
    seq.ca.items.update(comments)
    if nodes:
        seq.fa.set_block_style()  # an empty "[]" grows into one item per line
    else:
        seq.fa.set_flow_style()  # "key: []"; a comment above a removed first item goes with it
        if seq.ca.comment is not None and len(seq.ca.comment) > 1:
            seq.ca.comment[1] = None
    return seq


def _set_section(parent: CommentedMap, key: str, seq: CommentedSeq) -> None:
    """Set ``parent[key]``, unless it is empty and was not there (an optional key stays out)."""
    if seq or key in parent:
        parent[key] = seq
    comments = parent.ca.items.get(key)
    if not seq and comments is not None and len(comments) > 3:
        comments[3] = None  # the comment above the removed first item; "key: []" has no item lines


def _read_items(seq: Any, keys: tuple[str, ...], scale: tuple[int, int], optional: tuple[str, ...] = ()) -> list[Item]:
    """Items with every one of ``keys`` (a point, or a polygon's points), and the lists of points of
    ``optional`` keys (None when absent)."""

    def pixels(xy: Any) -> list[float]:
        return [float(xy[0]) * scale[0], float(xy[1]) * scale[1]]

    items: list[Item] = []
    for src, node in enumerate(seq if isinstance(seq, list) else []):
        try:
            item: Item = {"name": str(node.get("name", "")), "src": src}
            for key in keys:
                item[key] = [pixels(p) for p in node[key]] if key == "polygon" else pixels(node[key])
            for key in optional:
                item[key] = None if node.get(key) is None else [pixels(p) for p in node[key]]
            if "start" in keys:
                item["lanes"] = _read_items(node.get("lanes"), ("start", "end"), scale)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            continue
        items.append(item)
    return items


def _convert_speed_points(root: CommentedMap, old: _Converter, new: _Converter) -> None:
    speed = root.get("speed")
    points = speed.get("image_points") if isinstance(speed, dict) else None
    if not isinstance(points, list):
        return
    try:
        converted = CommentedSeq([new.point(old.to_pixels(p)) for p in points])
    except (TypeError, ValueError):
        return  # left as it was; loading the config reports it
    converted.fa.set_flow_style()
    speed["image_points"] = converted
