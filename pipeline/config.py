"""Run configuration: YAML sections mapped onto dataclasses, with defaults and strict validation.

Every key is optional. Unknown keys, wrong types and out-of-range values raise :class:`ConfigError`
naming the file and the key, so a typo never silently falls back to a default.

Example:
    >>> config = load_config(None, {"lines": [{"name": "a", "start": [0, 10], "end": [100, 10]}]})
    >>> config.lines[0].end
    (100.0, 10.0)
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from pipeline.durations import is_duration
from pipeline.errors import ConfigError
from pipeline.geometry import Point, calibration_problem, polygon_problem
from pipeline.yaml_io import read_yaml


def _check(predicate: Callable[[Any], bool], expected: str) -> dict[str, Any]:
    """Field metadata: a value must satisfy ``predicate``; ``expected`` says what it should be."""
    return {"check": (predicate, expected)}


_TIME = "an ISO 8601 date and time such as 2024-05-01T07:00:00"


def parse_time(text: str) -> float | None:
    """Unix time of an ISO 8601 date and time (UTC unless it has an offset); None if it is not one.

    Example:
        >>> parse_time("1970-01-01T01:00:00Z"), parse_time("1970-01-01T01:00:00+01:00"), parse_time("7am")
        (3600.0, 0.0, None)
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass
class SourceConfig:
    """Where frames come from. The CLI's SOURCE argument overrides ``path``."""

    path: str | None = None
    fps: float = field(default=30.0, metadata=_check(lambda v: v > 0, "a positive number"))
    """Frame rate for image folders, which carry no timestamps."""
    max_frames: int | None = field(default=None, metadata=_check(lambda v: v is None or v > 0, "a positive integer"))
    read_policy: str = field(
        default="auto", metadata=_check(lambda v: v in ("auto", "latest", "all"), "auto, latest or all")
    )
    """latest: drop old frames so processing never lags a live feed; all: process every frame;
    auto: latest for webcams and streams, all for files and images."""
    stall_timeout_s: float = field(default=10.0, metadata=_check(lambda v: v > 0, "a positive number of seconds"))
    """Live sources: seconds without a frame before reconnecting."""
    start_time: str | None = field(default=None, metadata=_check(lambda v: parse_time(v) is not None, _TIME))
    """When a file's first frame was taken, e.g. 2024-05-01T07:00:00+02:00 (no offset: UTC): aligns
    ``intervals.csv`` to the clock; None: the file's ``creation_time`` if it has one. Live feeds use the clock."""
    max_reconnects: int | None = field(default=None, metadata=_check(lambda v: v >= 0, "an integer >= 0"))
    """Live sources: failed attempts in a row before giving up (exit code 2); null: retry forever."""


@dataclass
class ModelConfig:
    """The detector. ``weights`` is a path, a file in ``models/``, or an Ultralytics model name."""

    weights: str | None = None
    """None: ``models/yolo11n.pt`` for detect, the OpenVINO int8 ``yolo11n-seg`` model for segment."""
    task: str | None = field(default=None, metadata=_check(lambda v: v in ("detect", "segment"), "detect or segment"))
    """None: the model's own task (detect for the default weights)."""
    backend: str = field(
        default="auto",
        metadata=_check(lambda v: v in ("auto", "torch", "onnx", "openvino"), "auto, torch, onnx or openvino"),
    )
    """Inference engine for ``.pt`` weights (exported once and cached); auto: the fastest installed for the
    device (OpenVINO, then ONNX Runtime, on CPU; PyTorch fp16 on a GPU)."""
    precision: str = field(
        default="auto", metadata=_check(lambda v: v in ("auto", "fp32", "int8"), "auto, fp32 or int8")
    )
    """Weights/activations for an OpenVINO export of ``.pt`` weights; int8 is quantized once (NNCF) and
    cached. auto: int8 on a CPU with int8 dot-product instructions (VNNI/AMX), else fp32."""
    calibration: str | None = None
    """Frames to calibrate int8 on (video, folder or glob; your own footage is best); None: the
    bundled ``models/calibration/`` (48 frames of traffic scenes)."""
    imgsz: int = field(default=640, metadata=_check(lambda v: 32 <= v <= 8192, "an integer from 32 to 8192"))
    """Long side of the model input; the input keeps the source's aspect ratio."""
    upscale: bool = False
    """Allow a source smaller than ``imgsz`` to be upscaled (off: a 320x240 clip runs at 320)."""
    detect_every: int = field(default=1, metadata=_check(lambda v: 1 <= v <= 30, "an integer from 1 to 30"))
    """Run the detector on every Nth frame; the tracker's motion model carries the boxes in between."""
    conf: float = field(default=0.1, metadata=_check(lambda v: 0 < v < 1, "a number between 0 and 1"))
    """Detector threshold. Low on purpose: ByteTrack keeps tracks alive with low-score boxes."""
    iou: float = field(default=0.7, metadata=_check(lambda v: 0 < v <= 1, "a number between 0 and 1"))
    agnostic_nms: bool = True
    """One box per object whatever its class: a car also scored as a truck must not become a second
    track (and a second count); the track's class is its majority vote. Off: Ultralytics' per-class
    NMS (keeps e.g. a rider and their motorcycle when their boxes overlap more than ``iou``)."""
    classes: list[str] | None = None
    """Class names to keep (e.g. [car, truck]); None keeps all."""
    device: str = field(
        default="auto",
        metadata=_check(
            lambda v: v in ("auto", "cpu", "cuda", "mps") or v.startswith("cuda:") or v.isdigit(),
            "auto, cpu, cuda, cuda:N or mps",
        ),
    )
    inference_threads: int = field(default=0, metadata=_check(lambda v: 0 <= v <= 1024, "an integer from 0 to 1024"))
    """CPU threads OpenVINO infers on in ``vpipe run``. 0 (auto): every core or one fewer, whichever the
    run's first frames go faster with, because a core left to the other stages wins only where the
    model is cheap next to them (the summary gives both rates)."""


_UNIT = _check(lambda v: 0 <= v <= 1, "a number between 0 and 1")


@dataclass
class TrackerConfig:
    """ByteTrack parameters (Ultralytics' implementation). Durations are in seconds of video."""

    track_high_thresh: float = field(default=0.25, metadata=_UNIT)
    track_low_thresh: float = field(default=0.1, metadata=_UNIT)
    new_track_thresh: float = field(default=0.25, metadata=_UNIT)
    track_buffer_s: float = field(default=1.0, metadata=_check(lambda v: v >= 0, "a number of seconds >= 0"))
    """How long a lost track is kept for re-identification; converted to frames with the source FPS."""
    match_thresh: float = field(default=0.8, metadata=_UNIT)
    fuse_score: bool = True


_NAME = _check(lambda v: v.strip() != "", "a non-empty name")


@dataclass
class LaneConfig:
    """A named sub-segment of a line; crossings are attributed to the lane they pass through."""

    name: str = field(metadata=_NAME)
    start: Point
    end: Point


@dataclass
class LineConfig:
    """A counting line in source pixels. Crossing from the negative to the positive side of
    cross(end - start, anchor - start) is ``in``: for a line drawn left to right, moving down."""

    name: str = field(metadata=_NAME)
    start: Point
    end: Point
    min_crossing_distance: float = field(default=6.0, metadata=_check(lambda v: v >= 0, "a number of pixels >= 0"))
    """How far beyond the line (pixels) an anchor must get for a crossing to count: jitter on the
    line counts nothing, and crossing back counts only after moving this far back."""
    lanes: list[LaneConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError(f"start and end are the same point {self.start}")


@dataclass
class ZoneConfig:
    """A polygon zone in source pixels; objects whose anchor is inside are counted per frame."""

    name: str = field(metadata=_NAME)
    polygon: list[Point] = field(metadata=_check(lambda v: len(v) >= 3, "a list of at least 3 points"))

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
    slots: list[SlotConfig] = field(default_factory=list)
    rule: str = field(
        default="center",
        metadata=_check(lambda v: v in ("center", "footprint", "coverage"), "center, footprint or coverage"),
    )
    """How a vehicle occupies a slot, judged on each frame's own detections (no track needed). center: its
    box centre is in the slot; footprint: ``min_overlap`` of the lower ``footprint_fraction`` of its box (mask)
    is in the slot; coverage: it covers ``min_overlap`` of the slot. Each vehicle occupies at most one slot
    and each slot counts one vehicle. docs/parking.md has the measurements behind the defaults."""
    min_overlap: float = field(default=0.5, metadata=_check(lambda v: 0 < v <= 1, "a fraction between 0 and 1"))
    """footprint: share of the vehicle's footprint inside the slot; coverage: share of the slot covered."""
    min_confidence: float = field(default=0.005, metadata=_check(lambda v: 0 < v < 1, "a number between 0 and 1"))
    """Detections below this confidence do not occupy a slot. Low on purpose: parked cars seen from far and
    at an angle score low, and the one-vehicle-one-slot matching keeps stray boxes out of free slots. With
    slots configured, the detector runs at the lower of this and ``model.conf``."""
    footprint_fraction: float = field(default=0.5, metadata=_check(lambda v: 0 < v <= 1, "a fraction between 0 and 1"))
    """Lower share of a vehicle's box (mask) taken as where it meets the ground (``footprint`` rule)."""
    full_resolution: bool = True
    """With slots configured, run the model at no less than the source's own size (``model.imgsz`` raised to
    its long side): distant parked cars are a few pixels wide."""
    debounce_s: float = field(default=2.0, metadata=_check(lambda v: v >= 0, "a number of seconds >= 0"))
    """A slot's state changes only after the new state has held this long."""


@dataclass
class ApproachConfig:
    """One approach of an intersection or road: a polygon in source pixels where tracks enter and leave."""

    name: str = field(
        metadata=_check(lambda v: v.strip() not in ("", "?") and "->" not in v, "a non-empty name without '->'")
    )
    polygon: list[Point] = field(metadata=_check(lambda v: len(v) >= 3, "a list of at least 3 points"))


@dataclass
class MovementsConfig:
    """Turning movements: each track that enters by one approach and leaves by another is one
    movement ``A->B`` (see ``docs/traffic.md``). No approaches, no movement counting."""

    approaches: list[ApproachConfig] = field(default_factory=list)
    min_outside_s: float = field(default=0.5, metadata=_check(lambda v: v >= 0, "a number of seconds >= 0"))
    """Time a track must spend outside every approach before coming back into its origin counts as a U-turn."""

    def __post_init__(self) -> None:
        if len(self.approaches) == 1:
            raise ValueError("approaches: a movement needs at least 2 approaches (or none to turn it off)")


_FOUR_POINTS = _check(lambda v: len(v) == 4, "a list of 4 points")


@dataclass
class SpeedConfig:
    """Ground speed from a perspective calibration: four image points (pixels) and the same four
    points on the ground (metres). Without them, no speeds are computed."""

    image_points: list[Point] | None = field(default=None, metadata=_FOUR_POINTS)
    world_points: list[Point] | None = field(default=None, metadata=_FOUR_POINTS)
    window_s: float = field(default=1.0, metadata=_check(lambda v: v > 0, "a positive number of seconds"))
    """Speeds are smoothed over the track's last ``window_s``."""
    max_kmh: float = field(default=250.0, metadata=_check(lambda v: v > 0, "a positive number"))
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


_ENV_NAME = _check(lambda v: re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v) is not None, "an environment variable name")


@dataclass
class MqttConfig:
    """Publish events and periodic counts to an MQTT broker (QoS 1). No ``host``: off.

    Topics: ``<topic_prefix>/<camera>/events/<event type>`` and ``<topic_prefix>/<camera>/counts``.
    Credentials come from environment variables or a file (``user:password`` on one line), never
    from the config itself, and are never printed."""

    host: str | None = None
    port: int = field(default=1883, metadata=_check(lambda v: 1 <= v <= 65535, "a port from 1 to 65535"))
    topic_prefix: str = field(
        default="vpipe",
        metadata=_check(lambda v: v.strip() != "" and "#" not in v and "+" not in v, "a topic without wildcards"),
    )
    client_id: str | None = None
    """None: ``vpipe-<camera>``; the broker keeps this client's session (and its QoS 1 messages)."""
    username_env: str | None = field(default=None, metadata=_ENV_NAME)
    password_env: str | None = field(default=None, metadata=_ENV_NAME)
    credentials_file: str | None = None


@dataclass
class WebhookConfig:
    """POST every event and periodic counts as JSON to ``url``, in order, retried until delivered;
    undelivered events wait in a bounded queue on disk (``publish/webhook.queue`` in the run folder)."""

    url: str | None = field(
        default=None,
        metadata=_check(lambda v: re.match(r"https?://[^/\s]+", v) is not None, "an http:// or https:// URL"),
    )
    timeout_s: float = field(default=5.0, metadata=_check(lambda v: v > 0, "a positive number of seconds"))
    max_queue_mb: float = field(default=100.0, metadata=_check(lambda v: v > 0, "a positive number of megabytes"))
    """Events beyond this much waiting on disk are dropped (and counted, with a warning)."""


@dataclass
class PublishConfig:
    """Live event streams; each is off unless configured (see ``docs/traffic.md``)."""

    camera: str | None = None
    """The camera's name in topics and messages; None: the source's name."""
    counts_every_s: float = field(default=10.0, metadata=_check(lambda v: v > 0, "a positive number of seconds"))
    """How often the current counts are published (video time)."""
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)


@dataclass
class DrawConfig:
    """What the annotated video shows."""

    boxes: bool = True
    labels: bool = True
    masks: bool = True
    trails: bool = True
    trail_seconds: float = field(default=1.5, metadata=_check(lambda v: v > 0, "a positive number of seconds"))
    trail_thickness: int = field(default=4, metadata=_check(lambda v: 1 <= v <= 32, "an integer from 1 to 32"))
    mask_opacity: float = field(default=0.45, metadata=_UNIT)


@dataclass
class OutputConfig:
    """What is written. ``dir`` defaults to ``runs/<source stem>``."""

    dir: str | None = None
    overwrite: bool = False
    """Replace the outputs of an earlier run in ``dir`` (they are removed first); false: refuse to run."""
    video: bool = True
    rotate: str | None = field(
        default=None, metadata=_check(lambda v: parse_rotation(v) is not None, "e.g. 1h, 30m or 500MB")
    )
    """Start new output files (counts, events, video) every period or size, e.g. 1h or 500MB."""
    interval: str = field(default="15m", metadata=_check(is_duration, "a duration such as 15m, 1h or 5s"))
    """Bin length of ``intervals.csv`` (line and movement counts per bin, direction and class)."""
    plots: bool = True
    """Write counts.png (counts over time) and heatmap.png (where objects were)."""
    crf: int = field(default=23, metadata=_check(lambda v: 0 <= v <= 51, "an integer from 0 to 51"))
    """H.264 quality: lower is better and larger."""
    preset: str = field(
        default="superfast",
        metadata=_check(
            lambda v: (
                v in ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
            ),
            "an x264 preset such as ultrafast, veryfast or medium",
        ),
    )
    """x264 speed preset. superfast's cheap motion search leaves the CPU to the other stages."""
    lookahead: int | None = field(
        default=10, metadata=_check(lambda v: v is None or 0 <= v <= 250, "null or an integer from 0 to 250")
    )
    """Frames x264's rate control looks ahead (with its macroblock tree; 0 turns both off); null keeps
    the preset's own. superfast has none; 10 (veryfast's) spends fewer bits on a static camera's
    background at little CPU cost."""


@dataclass
class Config:
    """A whole run. ``origin`` names where it came from, for error messages (not a YAML key)."""

    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    lines: list[LineConfig] = field(default_factory=list)
    zones: list[ZoneConfig] = field(default_factory=list)
    parking: ParkingConfig = field(default_factory=ParkingConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    movements: MovementsConfig = field(default_factory=MovementsConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    draw: DrawConfig = field(default_factory=DrawConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    coordinates: str = field(
        default="pixels", metadata=_check(lambda v: v in ("pixels", "normalized"), "pixels or normalized")
    )
    """Units of lines, zones, slots and speed image points: source pixels, or 0..1 of the frame's width
    and height (normalized: they follow the source through a change of resolution)."""
    origin: str = field(default="<defaults>", metadata={"internal": True})
    flags: dict[str, str] = field(default_factory=dict, metadata={"internal": True})
    """The keys command-line flags set, and those flags (``{"model.conf": "--conf"}``), to name them in errors."""

    def error(self, key: str, message: str) -> ConfigError:
        """A :class:`ConfigError` that names ``key``: by its flag if a flag set it, else with the file."""
        return ConfigError(f"{_label(self.origin, self.flags, key)}: {message}")

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
        approaches = [replace(a, polygon=[scale(p) for p in a.polygon]) for a in self.movements.approaches]
        speed = self.speed
        if speed.image_points is not None:
            speed = replace(speed, image_points=[scale(p) for p in speed.image_points])
        return replace(
            self,
            lines=lines,
            zones=zones,
            parking=replace(self.parking, slots=slots),
            speed=speed,
            movements=replace(self.movements, approaches=approaches),
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
            (f"movements.approaches[{i}] ({approach.name})", approach.polygon)
            for i, approach in enumerate(self.movements.approaches)
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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "kb": 1e3, "mb": 1e6, "gb": 1e9}


def parse_rotation(text: str) -> tuple[str, float] | None:
    """Parse a rotation spec: ``("time", seconds)`` for 30s/10m/1h/1d, ``("size", bytes)`` for 500KB/100MB/2GB."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", text)
    if not match or match[2].lower() not in _UNITS or float(match[1]) <= 0:
        return None
    kind = "size" if match[2].lower().endswith("b") else "time"
    return kind, float(match[1]) * _UNITS[match[2].lower()]


def load_config(
    path: str | Path | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    text: str | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> Config:
    """Load a YAML config, apply ``overrides`` (same nesting as the YAML) and validate.

    Args:
        path: A YAML file, or None for the defaults.
        overrides: Values that replace the file's, e.g. ``{"model": {"imgsz": 320}}`` from CLI flags.
        text: The file's contents, when they are already in hand (checked before being written to
            ``path``); errors and ``slots_file`` are still relative to ``path``.
        flag_names: The flag each override key comes from (``{"model.imgsz": "--imgsz"}``): an error
            in a value a flag set names the flag.

    Returns:
        The validated config.

    Raises:
        ConfigError: The file is missing or unparsable, or a key or value is invalid.
    """
    origin = str(path) if path is not None else "<defaults>"
    data: Any = {}
    if path is not None:
        data = read_yaml(path, "config file", text)
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: expected a mapping of sections at the top level, got {_describe(data)}")
    flags = {key: flag for key, flag in (flag_names or {}).items() if _has_key(overrides or {}, key)}
    merged = _deep_merge(data, overrides or {})
    try:
        config = _build(Config, merged, origin, "")
    except _KeyError as exc:
        raise ConfigError(f"{_label(origin, flags, exc.key)}: {exc.detail}") from None
    config.origin, config.flags = origin, flags
    if config.parking.slots_file:
        config.parking.slots += load_slots(_relative_to(config.parking.slots_file, path))
    _check_unique_names(config)
    return config


def _relative_to(name: str, config_path: str | Path | None) -> Path:
    """A path from a config file: relative to the config's folder if it exists there, else as given."""
    candidate = Path(config_path).parent / name if config_path is not None else Path(name)
    return candidate if candidate.exists() else Path(name)


def load_slots(path: str | Path) -> list[SlotConfig]:
    """Read a slots file: a YAML (or JSON, which is YAML) list of ``{name, polygon}``.

    Raises:
        ConfigError: Missing, unparsable or malformed file.
    """
    data = read_yaml(path, "slots file")
    if isinstance(data, dict) and "slots" in data:
        data = data["slots"]
    return _coerce(data, list[SlotConfig], str(path), "slots")


def _check_unique_names(config: Config) -> None:
    sections = (
        ("lines", config.lines),
        ("zones", config.zones),
        ("parking.slots", config.parking.slots),
        ("movements.approaches", config.movements.approaches),
    )
    for section, items in sections:
        names = [item.name for item in items]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise config.error(section, f"names must be unique, {', '.join(duplicates)} repeated")


def _has_key(data: Mapping[str, Any], dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    if head not in data:
        return False
    return not rest or (isinstance(data[head], Mapping) and _has_key(data[head], rest))


def _label(origin: str, flags: Mapping[str, str], key: str) -> str:
    """How an error names ``key``: the flag that set it (``--conf``), else ``file: key`` (``key`` alone
    without a file)."""
    for flag_key, flag in flags.items():
        if key == flag_key:
            return flag
        if key.startswith((f"{flag_key}.", f"{flag_key}[")):
            return f"{flag}: {key}"
    return f"{origin}: {key}" if origin != "<defaults>" else key


class _KeyError(ConfigError):
    """A config error at one key, before it is labelled with the file or the flag."""

    def __init__(self, origin: str, key: str, detail: str) -> None:
        super().__init__(f"{_label(origin, {}, key)}: {detail}")
        self.key, self.detail = key, detail


def _deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "nothing"


def _build(cls: type, data: Any, origin: str, key: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, checking every key, type and value."""
    label = key or "top level"
    if not isinstance(data, Mapping):
        raise _KeyError(origin, label, f"expected a mapping, got {_describe(data)}")
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if not f.metadata.get("internal")}
    for name in data:
        if name not in known:
            close = difflib.get_close_matches(str(name), list(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(known)})"
            raise ConfigError(f"{origin}: unknown key '{_join(key, str(name))}'{hint}")
    kwargs = {}
    for name, spec in known.items():
        where = _join(key, name)
        if name not in data:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise _KeyError(origin, label, f"missing required key '{name}'")
            continue
        value = _coerce(data[name], hints[name], origin, where)
        if "check" in spec.metadata:
            predicate, expected = spec.metadata["check"]
            if value is not None and not predicate(value):
                raise _KeyError(origin, where, f"expected {expected}, got {data[name]!r}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:  # cross-field checks in __post_init__
        raise _KeyError(origin, label, str(exc)) from None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _coerce(value: Any, tp: Any, origin: str, where: str) -> Any:
    """Return ``value`` as type ``tp`` or raise a ConfigError that says what was expected."""
    expected_name = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    origin_tp = get_origin(tp)
    if origin_tp in (Union, types.UnionType):
        options = [arg for arg in get_args(tp) if arg is not type(None)]
        if value is None:
            return None
        return _coerce(value, options[0], origin, where)
    if is_dataclass(tp):
        return _build(tp, value, origin, where)
    if origin_tp is list:
        if not isinstance(value, list):
            raise _KeyError(origin, where, f"expected a list, got {_describe(value)}")
        (item_tp,) = get_args(tp)
        return [_coerce(item, item_tp, origin, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin_tp is tuple:
        item_types = get_args(tp)
        if not isinstance(value, list | tuple) or len(value) != len(item_types):
            raise _KeyError(origin, where, f"expected a point [x, y], got {_describe(value)}")
        return tuple(
            _coerce(item, t, origin, f"{where}[{i}]") for i, (item, t) in enumerate(zip(value, item_types, strict=True))
        )
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
    )
    if not ok:
        raise _KeyError(origin, where, f"expected {expected_name[tp]}, got {_describe(value)}")
    return float(value) if tp is float else value
