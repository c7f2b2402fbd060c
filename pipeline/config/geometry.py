"""The config sections that place things on the image: lines and lanes, zones, parking slots,
movement approaches and the speed calibration (pixels, or 0..1 with ``coordinates: normalized``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.config.fields import FOUR_POINTS, NON_EMPTY_NAME, at_most, check
from pipeline.geometry import Point, calibration_problem, cross, polygon_problem

# How many of each a config may place on the image: beyond what one camera's frame usefully holds (about
# 100 bays in the PKLot lot, a handful of approaches at an intersection), and every one of them costs
# time on every frame, a column in counts.csv and a row in the summary.
MAX_LINES = 100
MAX_LANES = 32
"""Per line."""
MAX_ZONES = 100
MAX_SLOTS = 500
"""In ``parking.slots`` and ``slots_file`` together."""
MAX_APPROACHES = 16
"""Each ordered pair of them is a movement with its own column."""
MAX_POLYGON_POINTS = 100
"""Per zone, slot or approach: checking that a polygon does not cross itself takes time in the square of its points."""

SlotRule = Literal["center", "footprint", "coverage"]
"""How a vehicle occupies a parking slot (see :attr:`ParkingConfig.rule`)."""

POLYGON = {**check(lambda v: len(v) >= 3, "a list of at least 3 points"), **at_most(MAX_POLYGON_POINTS, "points")}


@dataclass
class LaneConfig:
    """A named sub-segment of a line; crossings are attributed to the lane they pass through."""

    name: str = field(metadata=NON_EMPTY_NAME)
    start: Point
    end: Point


@dataclass
class LineConfig:
    """A counting line in source pixels. Crossing from the negative to the positive side of
    cross(end - start, anchor - start) is ``in``: for a line drawn left to right, moving down."""

    name: str = field(metadata=NON_EMPTY_NAME)
    start: Point
    end: Point
    min_crossing_distance: float = field(default=6.0, metadata=check(lambda v: v >= 0, "a number of pixels >= 0"))
    """How far beyond the line (pixels) an anchor must get for a crossing to count: jitter on the
    line counts nothing, and crossing back counts only after moving this far back."""
    same_object_overlap: float = field(default=0.6, metadata=check(lambda v: 0 < v <= 1, "a number above 0, up to 1"))
    """Two tracks whose boxes lie one this much inside the other (intersection over the smaller box) as
    the second crosses, within 2 s of the first's count the same way, are one object: a lorry and its
    load detected apart, a rider and their bicycle. The second does not count. 1 counts every track."""
    lanes: list[LaneConfig] = field(default_factory=list, metadata=at_most(MAX_LANES, "lanes"))

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError(f"start and end are the same point {self.start}")


@dataclass
class ZoneConfig:
    """A polygon zone in source pixels; objects whose anchor is inside are counted per frame."""

    name: str = field(metadata=NON_EMPTY_NAME)
    polygon: list[Point] = field(metadata=POLYGON)

    def __post_init__(self) -> None:
        problem = polygon_problem(self.polygon)
        if problem:
            raise ValueError(f"polygon: {problem}")


@dataclass
class SlotConfig(ZoneConfig):
    """A parking slot: a named polygon in source pixels."""


@dataclass
class ParkingConfig:
    """Parking occupancy. Slots come from ``slots`` and/or a YAML/JSON file of the same list
    (``slots_file``, relative to the config file); no slots means no parking analytics."""

    slots_file: str | None = None
    slots: list[SlotConfig] = field(default_factory=list, metadata=at_most(MAX_SLOTS, "slots"))
    rule: SlotRule = "center"
    """How a vehicle occupies a slot, judged on each frame's own detections (no track needed). center: its
    box centre is in the slot; footprint: ``min_overlap`` of the lower ``footprint_fraction`` of its box (mask)
    is in the slot; coverage: it covers ``min_overlap`` of the slot. Each vehicle occupies at most one slot
    and each slot counts one vehicle. docs/parking.md has the measurements behind the defaults."""
    min_overlap: float = field(default=0.5, metadata=check(lambda v: 0 < v <= 1, "a fraction between 0 and 1"))
    """footprint: share of the vehicle's footprint inside the slot; coverage: share of the slot covered."""
    min_confidence: float = field(default=0.005, metadata=check(lambda v: 0 < v < 1, "a number between 0 and 1"))
    """Detections below this confidence do not occupy a slot. Low on purpose: parked cars seen from far and
    at an angle score low, and the one-vehicle-one-slot matching keeps stray boxes out of free slots. With
    slots configured, the detector runs at the lower of this and ``model.conf``."""
    footprint_fraction: float = field(default=0.5, metadata=check(lambda v: 0 < v <= 1, "a fraction between 0 and 1"))
    """Lower share of a vehicle's box (mask) taken as where it meets the ground (``footprint`` rule)."""
    min_box_to_bay_area: float = field(default=0.3, metadata=check(lambda v: v >= 0, "a number >= 0"))
    """A box whose area is below this share of a slot's area cannot occupy that slot: at ``min_confidence``
    the detector also boxes stains, people and parts of cars, all much smaller than a bay. 0 turns it off."""
    full_resolution: bool = True
    """With slots configured, run the model at no less than the source's own size (``model.imgsz`` raised to
    its long side): distant parked cars are a few pixels wide."""
    debounce_s: float = field(default=2.0, metadata=check(lambda v: v >= 0, "a number of seconds >= 0"))
    """A slot's state changes only after the new state has held this long."""


@dataclass
class ApproachConfig:
    """One approach of an intersection or road, where tracks enter and leave: a polygon in source pixels
    that the anchor is in, a gate line across the leg (the stop line or crosswalk) that it crosses, or
    both. A gate's points go with the intersection on their right (clockwise around it on the image):
    crossing it toward the intersection is ``in``, as on a counting line."""

    name: str = field(
        metadata=check(lambda v: v.strip() not in ("", "?") and "->" not in v, "a non-empty name without '->'")
    )
    polygon: list[Point] | None = field(default=None, metadata=POLYGON)
    gate: list[Point] | None = field(default=None, metadata=check(lambda v: len(v) == 2, "a list of 2 points"))

    def __post_init__(self) -> None:
        if self.polygon is None and self.gate is None:
            raise ValueError("give a polygon, a gate or both")
        if self.gate is not None and self.gate[0] == self.gate[1]:
            raise ValueError(f"gate: both points are {self.gate[0]}")

    @property
    def points(self) -> list[Point]:
        """Every point placed on the image: the polygon's, then the gate's."""
        return [*(self.polygon or []), *(self.gate or [])]


@dataclass
class CrosswalkConfig:
    """A crosswalk where pedestrians are counted: a line across it (a pedestrian walking the crosswalk
    crosses it, e.g. along the road's centre line) or its polygon (a pedestrian that walks through it)."""

    name: str = field(metadata=NON_EMPTY_NAME)
    line: list[Point] | None = field(default=None, metadata=check(lambda v: len(v) == 2, "a list of 2 points"))
    polygon: list[Point] | None = field(default=None, metadata=POLYGON)

    def __post_init__(self) -> None:
        if (self.line is None) == (self.polygon is None):
            raise ValueError("give a line or a polygon (one of them)")
        if self.line is not None and self.line[0] == self.line[1]:
            raise ValueError(f"line: both points are {self.line[0]}")
        problem = polygon_problem(self.polygon) if self.polygon is not None else None
        if problem:
            raise ValueError(f"polygon: {problem}")

    @property
    def points(self) -> list[Point]:
        """Every point placed on the image."""
        return [*(self.line or []), *(self.polygon or [])]


@dataclass
class MovementsConfig:
    """Turning movements: each track that enters by one approach and leaves by another is one
    movement ``A->B`` (see ``docs/traffic.md``). No approaches, no movement counting."""

    approaches: list[ApproachConfig] = field(default_factory=list, metadata=at_most(MAX_APPROACHES, "approaches"))
    min_outside_s: float = field(default=0.5, metadata=check(lambda v: v >= 0, "a number of seconds >= 0"))
    """Time a track must spend outside every approach before coming back into its origin counts as a U-turn."""
    min_crossing_distance: float = field(default=6.0, metadata=check(lambda v: v >= 0, "a number of pixels >= 0"))
    """How far beyond a gate (pixels) an anchor must get for its crossing to count, as on a counting line."""
    crosswalks: list[CrosswalkConfig] = field(default_factory=list, metadata=at_most(MAX_APPROACHES, "crosswalks"))
    """Where pedestrians (tracks of a ``pedestrian`` class group) are counted; they make no movements."""

    def __post_init__(self) -> None:
        if len(self.approaches) == 1:
            raise ValueError("approaches: a movement needs at least 2 approaches (or none to turn it off)")
        for index, approach in enumerate(self.approaches):
            if approach.gate is None:
                continue
            # A gate drawn the wrong way round would take every vehicle entering for one leaving: then
            # every other approach lies on its left (perspective may put some there when it is right).
            centres = [_centre(other.points) for other in self.approaches if other is not approach]
            if all(cross(approach.gate[0], approach.gate[1], centre) <= 0 for centre in centres):
                raise ValueError(
                    f"approaches[{index}].gate ({approach.name}): every other approach lies on its left; give its "
                    "points the other way round (the intersection on the right going from the first to the second)"
                )


def _centre(points: list[Point]) -> Point:
    return (sum(x for x, _ in points) / len(points), sum(y for _, y in points) / len(points))


@dataclass
class SpeedConfig:
    """Ground speed from a perspective calibration: four image points (pixels) and the same four
    points on the ground (metres). Without them, no speeds are computed."""

    image_points: list[Point] | None = field(default=None, metadata=FOUR_POINTS)
    world_points: list[Point] | None = field(default=None, metadata=FOUR_POINTS)
    window_s: float = field(default=1.0, metadata=check(lambda v: v > 0, "a positive number of seconds"))
    """Speeds are smoothed over the track's last ``window_s``."""
    max_kmh: float = field(default=250.0, metadata=check(lambda v: v > 0, "a positive number"))
    """Faster values are rejected as implausible (not clipped)."""

    def __post_init__(self) -> None:
        if (self.image_points is None) != (self.world_points is None):
            raise ValueError("image_points and world_points must be given together")
        if self.image_points is not None and self.world_points is not None:
            problem = calibration_problem(self.image_points, self.world_points)
            if problem:
                raise ValueError(problem)

    @property
    def enabled(self) -> bool:
        return self.image_points is not None
