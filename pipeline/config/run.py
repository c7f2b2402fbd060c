"""A whole run's config (:class:`Config`), and the ``output.rotate`` spec."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pipeline.config.fields import at_most, key_label
from pipeline.config.geometry import (
    MAX_LINES,
    MAX_ZONES,
    LineConfig,
    MovementsConfig,
    ParkingConfig,
    SpeedConfig,
    ZoneConfig,
)
from pipeline.config.sections import (
    ClassGroupConfig,
    DrawConfig,
    ModelConfig,
    OutputConfig,
    PublishConfig,
    SourceConfig,
    TrackerConfig,
    default_class_groups,
)
from pipeline.errors import ConfigError
from pipeline.geometry import Point

Coordinates = Literal["pixels", "normalized"]

MAX_CLASS_GROUPS = 32


@dataclass
class Config:
    """A whole run. ``origin`` names where it came from, for error messages (not a YAML key)."""

    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    lines: list[LineConfig] = field(default_factory=list, metadata=at_most(MAX_LINES, "lines"))
    zones: list[ZoneConfig] = field(default_factory=list, metadata=at_most(MAX_ZONES, "zones"))
    parking: ParkingConfig = field(default_factory=ParkingConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    movements: MovementsConfig = field(default_factory=MovementsConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    draw: DrawConfig = field(default_factory=DrawConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    class_groups: list[ClassGroupConfig] = field(
        default_factory=default_class_groups, metadata=at_most(MAX_CLASS_GROUPS, "class groups")
    )
    """The groups a turning-movement count reports, each with the model's classes in it (a class in none
    is the group ``other``); events and summaries carry a track's group beside its class."""
    coordinates: Coordinates = "pixels"
    """Units of lines, zones, slots and speed image points: source pixels, or 0..1 of the frame's width
    and height (normalized: they follow the source through a change of resolution)."""
    origin: str = field(default="<defaults>", metadata={"internal": True})
    flags: dict[str, str] = field(default_factory=dict, metadata={"internal": True})
    """The keys command-line flags set, and those flags (``{"model.conf": "--conf"}``), to name them in errors."""

    @property
    def has_geometry(self) -> bool:
        """Whether anything is placed on the image (lines, zones, slots, approaches), in :attr:`coordinates`."""
        return bool(
            self.lines or self.zones or self.parking.slots or self.movements.approaches or self.movements.crosswalks
        )

    def digest(self, ignored: Iterable[str] = (), extra: Mapping[str, Any] | None = None) -> str:
        """A digest of every setting that differs from its default, but ``origin`` and the dotted keys
        in ``ignored`` (``"output.dir"``), with ``extra`` settings added: equal digests, equal settings.
        Settings at their defaults are left out, so a version of vpipe that adds a setting (at its
        default) gives a config the digest the version before gave it.

        Example:
            >>> Config().digest(["source.max_frames"]) == Config(source=SourceConfig(max_frames=9)).digest(
            ...     ["source.max_frames"])
            True
            >>> Config().digest() == Config(model=ModelConfig(conf=0.1)).digest()  # 0.1 is the default
            True
        """
        settings = _changed(self, type(self)(), dataclasses.asdict(self))
        settings.pop("origin", None)
        for key in ignored:
            *parents, name = key.split(".")
            sections = [settings]
            for parent in parents:
                sections.append(sections[-1].get(parent, {}))
            sections[-1].pop(name, None)
            for parent, outer, inner in reversed(list(zip(parents, sections, sections[1:], strict=False))):
                if not inner:  # a section left empty is a section at its defaults
                    outer.pop(parent, None)
        settings.update(extra or {})
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def error(self, key: str, message: str) -> ConfigError:
        """A :class:`ConfigError` that names ``key``: by its flag if a flag set it, else with the file."""
        return ConfigError(f"{key_label(self.origin, self.flags, key)}: {message}")

    def in_pixels(self, width: int, height: int) -> Config:
        """This config with normalized geometry turned into pixels of a ``width`` x ``height`` frame
        (itself when it is in pixels already)."""
        if self.coordinates == "pixels":
            return self
        self.validate_geometry(1, 1)

        def scale(point: Point) -> Point:
            return (point[0] * width, point[1] * height)

        lines = [
            replace(
                line,
                start=scale(line.start),
                end=scale(line.end),
                lanes=[replace(lane, start=scale(lane.start), end=scale(lane.end)) for lane in line.lanes],
            )
            for line in self.lines
        ]
        zones = [replace(zone, polygon=[scale(p) for p in zone.polygon]) for zone in self.zones]
        slots = [replace(slot, polygon=[scale(p) for p in slot.polygon]) for slot in self.parking.slots]
        approaches = [
            replace(
                a,
                polygon=None if a.polygon is None else [scale(p) for p in a.polygon],
                gate=None if a.gate is None else [scale(p) for p in a.gate],
            )
            for a in self.movements.approaches
        ]
        crosswalks = [
            replace(
                c,
                line=None if c.line is None else [scale(p) for p in c.line],
                polygon=None if c.polygon is None else [scale(p) for p in c.polygon],
            )
            for c in self.movements.crosswalks
        ]
        speed = self.speed
        if speed.image_points is not None:
            speed = replace(speed, image_points=[scale(p) for p in speed.image_points])
        return replace(
            self,
            lines=lines,
            zones=zones,
            parking=replace(self.parking, slots=slots),
            speed=speed,
            movements=replace(self.movements, approaches=approaches, crosswalks=crosswalks),
            coordinates="pixels",
        )

    def validate_geometry(self, width: int, height: int) -> None:
        """Check that every line and zone point lies inside a ``width`` x ``height`` frame."""
        named: list[tuple[str, list[Point]]] = [
            (f"lines[{i}] ({line.name})", [line.start, line.end]) for i, line in enumerate(self.lines)
        ]
        named += [
            (f"lines[{i}].lanes[{j}] ({lane.name})", [lane.start, lane.end])
            for i, line in enumerate(self.lines)
            for j, lane in enumerate(line.lanes)
        ]
        named += [(f"zones[{i}] ({zone.name})", zone.polygon) for i, zone in enumerate(self.zones)]
        named += [(f"parking.slots[{i}] ({slot.name})", slot.polygon) for i, slot in enumerate(self.parking.slots)]
        named += [
            (f"movements.approaches[{i}] ({approach.name})", approach.points)
            for i, approach in enumerate(self.movements.approaches)
        ]
        named += [
            (f"movements.crosswalks[{i}] ({crosswalk.name})", crosswalk.points)
            for i, crosswalk in enumerate(self.movements.crosswalks)
        ]
        for key, points in named:
            for x, y in points:
                if not (0 <= x <= width and 0 <= y <= height):
                    frame = (
                        "0..1 (coordinates: normalized)"
                        if self.coordinates == "normalized"
                        else f"the {width}x{height} frame"
                    )
                    raise self.error(key, f"point ({x:g}, {y:g}) is outside {frame}")


def _changed(settings: Any, defaults: Any, plain: dict[str, Any]) -> dict[str, Any]:
    """The fields of the dataclass ``settings`` that differ from ``defaults`` (sections compared field
    by field), as in ``plain`` (``settings`` as :func:`dataclasses.asdict` gives it). Only sections are
    compared inside: a list or mapping that differs at all is taken whole.

    Example:
        >>> _changed(SourceConfig(fps=5.0), SourceConfig(), dataclasses.asdict(SourceConfig(fps=5.0)))
        {'fps': 5.0}
    """
    changed: dict[str, Any] = {}
    for item in dataclasses.fields(settings):
        value, default = getattr(settings, item.name), getattr(defaults, item.name)
        if dataclasses.is_dataclass(value) and dataclasses.is_dataclass(default):
            inner = _changed(value, default, plain[item.name])
            if inner:
                changed[item.name] = inner
        elif value != default:
            changed[item.name] = plain[item.name]
    return changed
