"""Soak run: per-track state and trails must stay bounded however long a live source runs.

A synthetic scene (640x360 at 30 fps) goes through the real stages, wired as ``pipeline/run/runner.py``
wires them: ``ByteTrackTracker`` -> ``Analytics`` (three counting lines, one with lanes; two zones;
eight parking slots; speed calibration) -> ``Heatmap`` and ``FrameAnnotator`` (boxes, labels,
fading trails and overlays drawn onto one reused frame). There is no model: the detections are
generated, so a run is reproducible and cheap. New objects arrive all the time, so track IDs keep
growing:

- through traffic on four lanes crosses the ``gate`` line and the ``junction`` zone;
- parkers drive along an access lane (``lot`` line), park in a slot for 1.5-5 s and leave;
- a car stops in the ``bay`` zone for 1-5 s (long dwell) and crosses ``bay_line``;
- detections are missed now and then (single frames, and occlusions shorter than the tracker's
  buffer), some are weak (ByteTrack's second association), some flicker class, and spurious
  one-frame boxes ("blips") start tracks that are never confirmed.

Every ``--report-every`` frames a sample records RSS, live Python objects
(``sys.getallocatedblocks()``, free to read), the Python heap (``--tracemalloc``) and the tracks
each per-track structure holds. New arrivals stop before 1/3 of the run and before its end until
every object has left and every retention window has passed ("quiet points"): there every
per-track structure must be empty, and the heap and the object count are compared between the two
quiet points, where a difference can only be state that outlived its tracks (at a busy moment it
would be hidden in the live state). ByteTrack's removed-track history (the IDs of the last 1000
removed tracks) is emptied at the quiet points (see :func:`run_soak`), so it counts in neither. The
runner's queues between stages (``PrefetchIterator``, ``BackgroundWorker``) are bounded by
construction (``queue.Queue(maxsize=...)``); here the stages run in one thread, as measurements need.

Verdict (exit status 1 when it fails):

- each structure stays under its bound derived from the scenario (:func:`scenario_bounds`), and
  its maximum over the second half exceeds its first-half maximum by at most 25% (+3);
- each per-track structure is empty at each quiet point;
- RSS grows by less than ``--max-rss-growth-mb`` (20) over the second half;
- live Python objects grow by less than :data:`BLOCK_MARGIN` between the quiet points, and with
  ``--tracemalloc`` the heap by less than :data:`HEAP_MARGIN_BYTES`.

Usage::

    python scripts/soak.py                          # 50,000 frames (28 min of video), soak.json
    python scripts/soak.py --frames 10000 --report-every 500 --tracemalloc --output /tmp/soak.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import supervision as sv

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.analytics import Analytics  # noqa: E402
from pipeline.analytics.heatmap import Heatmap  # noqa: E402
from pipeline.annotators.frame import FrameAnnotator  # noqa: E402
from pipeline.config import (  # noqa: E402
    DrawConfig,
    LaneConfig,
    LineConfig,
    ParkingConfig,
    SlotConfig,
    SpeedConfig,
    TrackerConfig,
    ZoneConfig,
)
from pipeline.tracking import ByteTrackTracker  # noqa: E402
from pipeline.tracking.association import REMOVED_MEMORY  # noqa: E402

CLASS_NAMES = {2: "car", 3: "motorcycle", 5: "bus", 7: "truck"}
ID_SPLIT = 2
"""Track IDs per object the bounds allow for. Occlusions are shorter than the tracker's buffer and
cars in a lane never overlap, so an object normally keeps one ID; a second covers a tracker slip
(a parker turning into its slot, a blip stealing a match). The test checks the run's ratio."""
REMOVED_CAP = REMOVED_MEMORY
"""The tracker remembers the IDs of the last 1000 removed tracks."""
BLOCK_MARGIN = 1000
"""Allowed growth of live Python objects between the quiet points. A leaked per-track or per-event
record is at least one object, and a default run has over 10,000 tracks and events between them;
bounded caches that are still filling (numpy's, the interpreter's) account for a few hundred."""
HEAP_MARGIN_BYTES = 256 * 1024
"""Allowed heap growth between the quiet points. With no track alive, what may differ is storage
that does not shrink (the hash tables of about a dozen per-track dicts, each a few KiB at these
bounds) and bounded caches; keeping any per-track record (>= 200 B: a ``_TrackState``, a vote
``Counter``, a trail) for each of the thousands of tracks between the points exceeds it."""
STRUCTURES = ("lines", "zones", "speed", "votes", "trails", "bt_tracked", "bt_lost", "bt_removed")
"""Per-track structures watched: the largest line and zone, and one each of the others."""
HELD = (*STRUCTURES, "analytics")
"""Columns of a sample's ``held``: the structures, and ``Analytics.tracks_held`` (all lines, zones, speed)."""
TraceMode = Literal["off", "run", "from-first-quiet"]


@dataclass(frozen=True)
class Lane:
    """A straight through-traffic lane: anchors at ``y``, moving ``direction`` (+1 east, -1 west)."""

    name: str
    y: float
    direction: int
    speed: float
    """Pixels per frame, the same for every car in the lane: no car catches up with the one ahead."""


@dataclass(frozen=True)
class Scenario:
    """The synthetic scene; every bound in :func:`scenario_bounds` follows from these numbers."""

    width: int = 640
    height: int = 360
    fps: float = 30.0
    seed: int = 0
    lanes: tuple[Lane, ...] = (
        Lane("eb1", 160, 1, 9.0),
        Lane("eb2", 200, 1, 11.0),
        Lane("wb1", 240, -1, 10.0),
        Lane("wb2", 280, -1, 12.0),
    )
    lane_span: tuple[float, float] = (230.0, 410.0)
    """Anchor x where through traffic appears and disappears (an overpass hides the rest of the road):
    short visits, so many tracks per second with few objects in view, which keeps the run cheap."""
    car_size: tuple[float, float] = (40.0, 30.0)
    lane_clearance_px: float = 20.0
    """Gap kept between two cars of a lane, so their boxes never overlap."""
    lane_mean_extra_gap: float = 2.0
    """Mean extra frames (geometric) between two arrivals in a lane, on top of the minimum spacing."""
    slots: int = 8
    parker_size: tuple[float, float] = (40.0, 46.0)
    parker_speed: float = 12.0
    park_frames: tuple[int, int] = (45, 150)
    slot_cooldown_frames: tuple[int, int] = (30, 300)
    bay_dwell_frames: tuple[int, int] = (30, 150)
    bay_speed: float = 8.0
    miss_prob: float = 0.03
    occlusion_prob: float = 0.004
    occlusion_frames: tuple[int, int] = (3, 12)
    """Shorter than ``track_buffer_s`` (30 frames), so the tracker can bridge them."""
    low_conf_prob: float = 0.05
    flicker_prob: float = 0.05
    blip_prob: float = 0.2
    """Chance per frame of one spurious box: a track that starts and is never confirmed."""
    track_buffer_s: float = 1.0
    trail_seconds: float = 1.5
    quiet_fractions: tuple[float, ...] = (1 / 3, 1.0)

    @property
    def buffer_frames(self) -> int:
        return max(1, round(self.track_buffer_s * self.fps))

    @property
    def forget_after_s(self) -> float:
        """What the runner gives :class:`Analytics`: a little longer than ByteTrack can revive a track."""
        return self.track_buffer_s + 1.0

    def lane_gap(self, lane: Lane) -> int:
        """Fewest frames between two arrivals in ``lane``."""
        return math.ceil((self.car_size[0] + self.lane_clearance_px) / lane.speed)

    def slot_polygon(self, index: int) -> list[tuple[float, float]]:
        x0 = 40.0 + 72.0 * index
        return [(x0, 15.0), (x0 + 56.0, 15.0), (x0 + 56.0, 65.0), (x0, 65.0)]


ACCESS_Y, PARKED_Y, BAY_Y, BAY_STOP_X = 110.0, 63.0, 345.0, 335.0


def _drive(x0: float, x1: float, y: float, speed: float) -> np.ndarray:
    """Anchor positions from x0 to x1 at ``speed`` pixels per frame, both ends included."""
    steps = max(1, math.ceil(abs(x1 - x0) / speed))
    return np.column_stack((np.linspace(x0, x1, steps + 1), np.full(steps + 1, y)))


def _stay(point: np.ndarray, frames: int) -> np.ndarray:
    return np.repeat(point.reshape(1, 2), frames, axis=0)


def lane_path(s: Scenario, lane: Lane) -> np.ndarray:
    """Across ``lane_span`` in the lane's direction."""
    x0, x1 = s.lane_span if lane.direction > 0 else s.lane_span[::-1]
    return _drive(x0, x1, lane.y, lane.speed)


def parker_path(s: Scenario, slot: int, park: int) -> np.ndarray:
    """In from the west along the access lane, up into the slot, ``park`` frames still, back out, away east."""
    half = s.parker_size[0] / 2
    cx = float(np.mean([x for x, _ in s.slot_polygon(slot)]))
    approach = _drive(-half, cx, ACCESS_Y, s.parker_speed)
    turn = np.column_stack((np.full(9, cx), np.linspace(ACCESS_Y, PARKED_Y, 9)))
    leave = _drive(cx, s.width + half, ACCESS_Y, s.parker_speed)
    return np.concatenate([approach, turn[1:], _stay(turn[-1], park), turn[::-1][1:], leave[1:]])


def bay_path(s: Scenario, dwell: int) -> np.ndarray:
    """In from the east, ``dwell`` frames stopped inside the ``bay`` zone, out to the west."""
    half = s.car_size[0] / 2
    approach = _drive(s.width + half, BAY_STOP_X, BAY_Y, s.bay_speed)
    leave = _drive(BAY_STOP_X, -half, BAY_Y, s.bay_speed)
    return np.concatenate([approach, _stay(approach[-1], dwell), leave[1:]])


def scenario_bounds(s: Scenario) -> dict[str, int]:
    """The most tracks each structure may hold at once, from the scenario alone.

    A structure that keeps a track for ``R`` frames after its last sighting holds at most the
    tracks seen in the last ``R`` frames: the objects present ``R`` frames ago (at most
    ``max_present``) and those that arrived since (at most ``arrivals(R)``), times
    :data:`ID_SPLIT`. ``max_present`` follows from the routes: a lane holds at most
    ``ceil(visit / minimum gap)`` cars, each slot and the bay one car. A structure that never forgot
    a track would pass its bound within a few hundred frames (a track arrives every 2-3 frames).
    """
    visit = {lane.name: len(lane_path(s, lane)) for lane in s.lanes}
    parker_min_life = min(len(parker_path(s, slot, s.park_frames[0])) for slot in range(s.slots))
    bay_min_life = len(bay_path(s, s.bay_dwell_frames[0]))
    max_present = sum(math.ceil(visit[lane.name] / s.lane_gap(lane)) for lane in s.lanes) + s.slots + 1

    def arrivals(frames: int) -> int:
        lanes = sum(frames // s.lane_gap(lane) + 1 for lane in s.lanes)
        return lanes + s.slots * (frames // parker_min_life + 1) + frames // bay_min_life + 1

    def seen_within(frames: int) -> int:
        return ID_SPLIT * (max_present + arrivals(frames))

    # Frames a track is kept after its last sighting, +2: the sighting itself and float timestamps.
    analytics_frames = math.ceil(s.forget_after_s * s.fps) + 2
    return {
        "max_present": max_present,
        "lines": seen_within(analytics_frames),  # LineCounter: forget_after_s
        "zones": seen_within(analytics_frames),  # ZoneCounter: lost_grace_s = forget_after_s
        "speed": seen_within(analytics_frames),  # SpeedEstimator: forget_after_s
        "votes": seen_within(s.buffer_frames + 1 + 2),  # TrackClassVote: buffer + 1 updates
        "trails": seen_within(math.ceil(s.trail_seconds * s.fps) + 2),  # points older than trail_seconds go
        # Tracked: confirmed tracks of the objects in view, this frame's unconfirmed ones, one blip.
        "bt_tracked": seen_within(1) + 1,
        # Lost: kept max_frames_lost (= buffer) updates, dropped from the list one update later.
        "bt_lost": seen_within(s.buffer_frames + 3),
        "bt_removed": REMOVED_CAP,
    }


@dataclass(eq=False)
class _Actor:
    path: np.ndarray
    size: tuple[float, float]
    class_id: int
    route: str
    age: int = 0
    hidden_until: int = -1


class SyntheticScene:
    """Generates each frame's detections, object by object, as a detector would report them.

    Args:
        scenario: The scene's parameters.
        quiet_at: Frame counts (frames processed) at which the scene must be empty: nothing
            arrives during the ``quiet_lead`` frames before each.
    """

    def __init__(self, scenario: Scenario, quiet_at: list[int]) -> None:
        self.s = scenario
        self.rng = np.random.default_rng(scenario.seed)
        self.actors: list[_Actor] = []
        self.spawned = 0
        self._next_arrival: dict[str, int] = {lane.name: 0 for lane in scenario.lanes}
        self._next_arrival.update({f"slot{i}": int(self.rng.integers(0, 60)) for i in range(scenario.slots)})
        self._next_arrival["bay"] = 0
        self._busy: set[str] = set()
        longest = max(
            max(len(lane_path(scenario, lane)) for lane in scenario.lanes),
            max(len(parker_path(scenario, i, scenario.park_frames[1])) for i in range(scenario.slots)),
            len(bay_path(scenario, scenario.bay_dwell_frames[1])),
        )
        retention = max(scenario.forget_after_s, scenario.trail_seconds, scenario.track_buffer_s) * scenario.fps
        self.quiet_lead = longest + math.ceil(retention) + 3
        """Frames without arrivals before a quiet point: the longest visit, then the longest retention
        window (+3: ByteTrack drops a removed track from its lost list one update late)."""
        self._quiet_at = sorted(quiet_at)

    def _quiet(self, frame: int) -> bool:
        return any(q - self.quiet_lead <= frame < q for q in self._quiet_at)

    def _arrive(self, frame: int) -> None:
        s, rng = self.s, self.rng
        for lane in s.lanes:
            if frame >= self._next_arrival[lane.name]:
                class_id = int(rng.choice([2, 2, 2, 2, 3, 5, 7]))
                self.actors.append(_Actor(lane_path(s, lane), s.car_size, class_id, lane.name))
                extra = int(rng.geometric(1 / (1 + s.lane_mean_extra_gap))) - 1
                self._next_arrival[lane.name] = frame + s.lane_gap(lane) + extra
        for slot in range(s.slots):
            route = f"slot{slot}"
            if route not in self._busy and frame >= self._next_arrival[route]:
                park = int(rng.integers(s.park_frames[0], s.park_frames[1] + 1))
                self.actors.append(_Actor(parker_path(s, slot, park), s.parker_size, 2, route))
                self._busy.add(route)
        if "bay" not in self._busy and frame >= self._next_arrival["bay"]:
            dwell = int(rng.integers(s.bay_dwell_frames[0], s.bay_dwell_frames[1] + 1))
            self.actors.append(_Actor(bay_path(s, dwell), s.car_size, 2, "bay"))
            self._busy.add("bay")

    def detections(self, frame: int) -> sv.Detections:
        """This frame's detections: boxes, ``confidence``, ``class_id`` and ``data["class_name"]``."""
        s, rng = self.s, self.rng
        quiet = self._quiet(frame)
        if not quiet:
            before = len(self.actors)
            self._arrive(frame)
            self.spawned += len(self.actors) - before
        rows: list[tuple[float, float, float, float, float, int]] = []
        for actor in self.actors:
            if frame < actor.hidden_until:
                continue
            if rng.random() < s.occlusion_prob:
                actor.hidden_until = frame + int(rng.integers(s.occlusion_frames[0], s.occlusion_frames[1] + 1))
                continue
            if rng.random() < s.miss_prob:
                continue
            x, y = actor.path[actor.age]
            w, h = actor.size
            jitter = rng.uniform(-1.0, 1.0, 4)
            x1, y1 = max(0.0, x - w / 2 + jitter[0]), max(0.0, y - h + jitter[1])
            x2, y2 = min(s.width - 1.0, x + w / 2 + jitter[2]), min(s.height - 1.0, y + jitter[3])
            if x2 - x1 < 8 or y2 - y1 < 8:  # mostly outside the frame: a detector would not see it
                continue
            weak = rng.random() < s.low_conf_prob
            confidence = rng.uniform(0.12, 0.24) if weak else rng.uniform(0.5, 0.95)
            class_id = actor.class_id if rng.random() >= s.flicker_prob else int(rng.choice([2, 7]))
            rows.append((x1, y1, x2, y2, confidence, class_id))
        if not quiet and rng.random() < s.blip_prob:
            bx, by, bw, bh = rng.uniform(0, s.width - 40), rng.uniform(0, s.height - 40), *rng.uniform(15, 40, 2)
            rows.append((bx, by, bx + bw, by + bh, rng.uniform(0.3, 0.7), 2))
        for actor in self.actors:
            actor.age += 1
        gone = [actor for actor in self.actors if actor.age >= len(actor.path)]
        self.actors = [actor for actor in self.actors if actor.age < len(actor.path)]
        for actor in gone:
            if actor.route in self._busy:
                self._busy.discard(actor.route)
                cooldown = int(rng.integers(*s.slot_cooldown_frames)) if actor.route.startswith("slot") else 1
                self._next_arrival[actor.route] = frame + cooldown
        table = np.array(rows, dtype=float).reshape(-1, 6)
        class_ids = table[:, 5].astype(int)
        return sv.Detections(
            xyxy=table[:, :4],
            confidence=table[:, 4],
            class_id=class_ids,
            data={"class_name": np.array([CLASS_NAMES[c] for c in class_ids.tolist()], dtype=str)},
        )


def build_analytics(s: Scenario) -> Analytics:
    """Lines (one with lanes), zones, parking slots and a speed calibration, configured as a user would."""
    lines = [
        LineConfig(
            "gate",
            (320, 125),
            (320, 295),
            lanes=[LaneConfig(lane.name, (320, lane.y - 35), (320, lane.y + 5)) for lane in s.lanes],
        ),
        LineConfig("bay_line", (150, 295), (150, 358)),
        LineConfig("lot", (20, 66), (20, 118)),
    ]
    zones = [
        ZoneConfig("junction", [(260, 130), (380, 130), (380, 290), (260, 290)]),
        ZoneConfig("bay", [(250, 295), (420, 295), (420, 358), (250, 358)]),
    ]
    parking = ParkingConfig(
        slots=[SlotConfig(f"A{i + 1}", s.slot_polygon(i)) for i in range(s.slots)], min_overlap=0.5, debounce_s=1.0
    )
    speed = SpeedConfig(
        image_points=[(0, 130), (640, 130), (640, 290), (0, 290)],
        world_points=[(0, 0), (32, 0), (32, 8), (0, 8)],  # 20 px per metre
    )
    return Analytics(lines, zones, forget_after_s=s.forget_after_s, parking=parking, speed=speed)


def held_now(tracker: ByteTrackTracker, analytics: Analytics, annotator: FrameAnnotator) -> list[int]:
    """Tracks held by each structure of :data:`HELD`, through their public counters where there is one."""
    assert analytics.speed is not None and annotator._trails is not None, "the soak needs speed and trails"
    return [
        max(line.tracks_held for line in analytics.lines),
        max(zone.tracks_held for zone in analytics.zones),
        analytics.speed.tracks_held,
        tracker._votes.tracks_held,
        annotator._trails.tracks_held,
        len(tracker.bytetrack.tracked),
        len(tracker.bytetrack.lost),
        len(tracker.bytetrack.removed_ids),
        analytics.tracks_held,
    ]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


_FIELDS = ("frame", "quiet", "rss_bytes", "heap_bytes", "blocks", "objects", "tracks_total")


@dataclass
class SoakResult:
    """What a soak run measured.

    ``samples`` are taken every ``report_every`` frames, at half the run and at the quiet points.
    Each has ``frame``, ``quiet``, ``rss_mb``, ``heap_mb`` (traced heap, None while not tracing),
    ``blocks`` (live Python objects), ``objects`` (in the scene), ``tracks_total`` (distinct track
    IDs so far), ``held`` (tracks per structure, now) and ``held_max`` (the most on any frame since
    the previous sample). At quiet points ``heap_mb`` and ``blocks`` are measured with ByteTrack's
    removed-track history emptied (``held`` still counts it).
    """

    frames: int
    scenario: dict[str, Any]
    bounds: dict[str, int]
    quiet_at: list[int]
    samples: list[dict[str, Any]] = field(default_factory=list)
    objects_spawned: int = 0
    distinct_tracks: int = 0
    events: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    pipeline_sites: dict[int, dict[str, tuple[int, int]]] = field(default_factory=dict)
    """At each quiet point (when tracing): live (bytes, blocks) per allocation site in ``pipeline/``."""

    def quiet_samples(self) -> list[dict[str, Any]]:
        return [sample for sample in self.samples if sample["quiet"]]

    def sample_at(self, frame: int) -> dict[str, Any]:
        """The sample taken after ``frame`` frames."""
        return next(sample for sample in self.samples if sample["frame"] == frame)


def _pipeline_sites(snapshot: tracemalloc.Snapshot) -> dict[str, tuple[int, int]]:
    package = str(REPO / "pipeline")
    stats = snapshot.filter_traces([tracemalloc.Filter(True, f"{package}/*")]).statistics("lineno")
    return {
        f"{Path(stat.traceback[0].filename).relative_to(REPO)}:{stat.traceback[0].lineno}": (stat.size, stat.count)
        for stat in stats
    }


def run_soak(
    frames: int = 50_000,
    report_every: int = 1000,
    trace_heap: TraceMode = "off",
    scenario: Scenario | None = None,
    draw: DrawConfig | None = None,
    on_sample: Callable[[dict[str, Any]], None] | None = None,
) -> SoakResult:
    """Feed ``frames`` synthetic frames through tracker, analytics, heatmap and annotator.

    The harness keeps its series in an array allocated up front, so it adds no Python objects as
    the run goes on: the heap and object counts are the pipeline's.

    Args:
        frames: Frames to process.
        report_every: Take a sample every this many frames.
        trace_heap: ``run``: tracemalloc from the start (3-4x slower); ``from-first-quiet``: from the
            first quiet point on, enough to compare the two quiet points at a third of the cost
            (what the heap holds at the end is then what the run allocated since and still keeps).
        scenario: The scene; the default one if None.
        draw: What the annotator draws; everything (trails of ``scenario.trail_seconds``) if None.
        on_sample: Called with each sample as it is taken (e.g. to print a table row).

    Returns:
        The samples and totals.

    Raises:
        ValueError: The run is too short for its quiet points.
    """
    s = scenario or Scenario()
    quiet_at = sorted({max(1, round(frames * fraction)) for fraction in s.quiet_fractions})
    scene = SyntheticScene(s, quiet_at)
    if quiet_at[0] < 2 * scene.quiet_lead:  # half of the stretch before it busy, half emptying
        least = math.ceil(2 * scene.quiet_lead / min(s.quiet_fractions))
        raise ValueError(f"{frames} frames is too short for this scene's quiet points: run at least {least}")
    result = SoakResult(frames, asdict(s), scenario_bounds(s), quiet_at)
    sample_at = {*range(report_every, frames + 1, report_every), frames // 2, *quiet_at}
    series = np.zeros((len(sample_at), len(_FIELDS) + 2 * len(HELD)), np.int64)
    peaks = np.zeros(len(HELD), np.int64)
    events: Counter[str] = Counter({"line_crossing": 0, "zone_enter": 0, "zone_exit": 0, "slot_change": 0})
    highest_id = distinct = row = 0
    harness_blocks = harness_bytes = 0  # what the stored pipeline_sites take themselves
    own_trace = trace_heap != "off" and not tracemalloc.is_tracing()  # else someone else's trace: leave it on
    if trace_heap == "run":
        tracemalloc.start()
    tracker = ByteTrackTracker(TrackerConfig(track_buffer_s=s.track_buffer_s), fps=s.fps, class_names=CLASS_NAMES)
    analytics = build_analytics(s)
    annotator = FrameAnnotator(draw or DrawConfig(trail_seconds=s.trail_seconds), show_masks=False)
    heatmap = Heatmap(s.width, s.height)
    background = np.full((s.height, s.width, 3), 60, np.uint8)
    canvas = background.copy()  # drawn on in place every frame, like the runner's decoded frame
    assert analytics.parking is not None
    started = time.perf_counter()
    try:
        for frame_index in range(frames):
            timestamp_s = frame_index / s.fps
            tracked = tracker.update(scene.detections(frame_index))
            frame_events = analytics.update(tracked, frame_index, timestamp_s)
            heatmap.update(tracked)
            if len(tracked):  # distinct IDs in O(1) memory, as the runner counts them: IDs only grow
                distinct += int((tracked.tracker_id > highest_id).sum())
                highest_id = max(highest_id, int(tracked.tracker_id.max()))
            analytics.row()  # what the runner writes to counts.csv, events.jsonl and parking.jsonl
            for event in frame_events:
                event.to_record()
                events[event.event_type] += 1
            analytics.parking.pop_intervals()
            np.copyto(canvas, background)
            annotator.annotate(canvas, tracked, timestamp_s, analytics.view())

            held = held_now(tracker, analytics, annotator)
            np.maximum(peaks, held, out=peaks)
            done = frame_index + 1
            if done not in sample_at:
                continue
            analytics.summary(timestamp_s)  # the runner refreshes summary.json every few seconds
            quiet = done in quiet_at
            if quiet and trace_heap == "from-first-quiet" and not tracemalloc.is_tracing():
                tracemalloc.start()
            if quiet:
                # Both quiet points must hold the same state; ByteTrack's removed-track history holds
                # other track IDs each time, so it is emptied here. No track is lost at a quiet point,
                # so this changes nothing ByteTrack does: the history only serves to drop just-removed
                # tracks from the lost list, and later IDs are all new.
                tracker.bytetrack.removed_ids.clear()
                gc.collect()  # frees cyclic garbage and empties the interpreter's free lists
            tracing = tracemalloc.is_tracing()
            heap = tracemalloc.get_traced_memory()[0] - harness_bytes if tracing else -1
            values = [done, quiet, _rss_bytes(), heap, sys.getallocatedblocks() - harness_blocks]
            series[row] = [*values, len(scene.actors), distinct, *held, *peaks.tolist()]
            peaks[:] = 0
            row += 1
            if quiet and tracing:
                before = sys.getallocatedblocks(), tracemalloc.get_traced_memory()[0]
                result.pipeline_sites[done] = _pipeline_sites(tracemalloc.take_snapshot())
                gc.collect()
                harness_blocks += sys.getallocatedblocks() - before[0]
                harness_bytes += tracemalloc.get_traced_memory()[0] - before[1]
            if on_sample is not None:
                on_sample(_sample(series[row - 1]))
    finally:
        if own_trace:
            tracemalloc.stop()
    result.seconds = round(time.perf_counter() - started, 1)
    result.samples = [_sample(values) for values in series[:row]]
    result.objects_spawned = scene.spawned
    result.distinct_tracks = distinct
    result.events = dict(events)
    return result


def _sample(values: np.ndarray) -> dict[str, Any]:
    fields = dict(zip(_FIELDS, values[: len(_FIELDS)].tolist(), strict=True))
    held = values[len(_FIELDS) :].tolist()
    return {
        "frame": fields["frame"],
        "quiet": bool(fields["quiet"]),
        "rss_mb": round(fields["rss_bytes"] / 2**20, 2),
        "heap_mb": round(fields["heap_bytes"] / 2**20, 4) if fields["heap_bytes"] >= 0 else None,
        "blocks": fields["blocks"],
        "objects": fields["objects"],
        "tracks_total": fields["tracks_total"],
        "held": dict(zip(HELD, held[: len(HELD)], strict=True)),
        "held_max": dict(zip(HELD, held[len(HELD) :], strict=True)),
    }


def site_growth(result: SoakResult) -> list[tuple[str, int, int]]:
    """(site, bytes, blocks) growth of live ``pipeline/`` allocations between the first and last quiet
    points, most blocks first (needs tracing at both)."""
    before, after = result.pipeline_sites[result.quiet_at[0]], result.pipeline_sites[result.quiet_at[-1]]
    growth = []
    for site in before.keys() | after.keys():
        size0, count0 = before.get(site, (0, 0))
        size1, count1 = after.get(site, (0, 0))
        growth.append((site, size1 - size0, count1 - count0))
    return sorted(growth, key=lambda item: (-item[2], -item[1]))


def verdict(result: SoakResult, max_rss_growth_mb: float = 20.0) -> dict[str, Any]:
    """The checks of the module docstring; ``passed`` is whether all hold."""
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    half = result.frames // 2
    first = [sample for sample in result.samples if sample["frame"] <= half]
    second = [sample for sample in result.samples if sample["frame"] > half]
    for name in STRUCTURES:
        peak_1 = max(sample["held_max"][name] for sample in first)
        peak_2 = max(sample["held_max"][name] for sample in second)
        if name != "bt_removed":  # a history capped at 1000 (and emptied at quiet points): its cap is the check
            # The peaks of two long stretches of the same random process: 25% (+3 tracks) for chance.
            allowed = math.floor(peak_1 * 1.25) + 3
            detail = f"max first half {peak_1}, second half {peak_2} (<= {allowed})"
            check(f"{name} steady", peak_2 <= allowed, detail)
        peak, bound = max(peak_1, peak_2), result.bounds[name]
        check(f"{name} bounded", peak <= bound, f"max {peak} (<= {bound})")
    for sample in result.quiet_samples():
        left = {name: value for name, value in sample["held"].items() if name != "bt_removed" and value}
        check(f"empty at quiet frame {sample['frame']}", not left, f"held {left or 'nothing'}")
    rss_growth = result.sample_at(result.frames)["rss_mb"] - result.sample_at(half)["rss_mb"]
    check("rss growth", rss_growth < max_rss_growth_mb, f"{rss_growth:+.2f} MB second half (< {max_rss_growth_mb})")
    q0, q1 = result.sample_at(result.quiet_at[0]), result.sample_at(result.quiet_at[-1])
    span = f"from quiet frame {q0['frame']} to {q1['frame']}"
    blocks = q1["blocks"] - q0["blocks"]
    check("python objects", blocks < BLOCK_MARGIN, f"{blocks:+d} live objects {span} (< {BLOCK_MARGIN})")
    if q0["heap_mb"] is not None and q1["heap_mb"] is not None:
        heap_kib = (q1["heap_mb"] - q0["heap_mb"]) * 1024
        limit_kib = HEAP_MARGIN_BYTES // 1024
        check("heap growth", heap_kib < limit_kib, f"{heap_kib:+.1f} KiB {span} (< {limit_kib})")
    return {"passed": all(c["ok"] for c in checks), "checks": checks}


_SHORT = {"bt_tracked": "bt_trk", "bt_removed": "bt_rem", "analytics": "analyt"}


def _header() -> str:
    held = " ".join(f"{_SHORT.get(name, name):>9}" for name in HELD)
    return f"{'frame':>7}  {'RSS MB':>7} {'heap MB':>7} {'kobj':>6} {'objs':>4} {'tracks':>6}  {held}"


def _row(sample: dict[str, Any]) -> str:
    heap = f"{sample['heap_mb']:7.2f}" if sample["heap_mb"] is not None else f"{'-':>7}"
    held = " ".join(f"{sample['held'][name]:>4}/{sample['held_max'][name]:<4}" for name in HELD)
    mark = "q" if sample["quiet"] else " "
    return (
        f"{sample['frame']:>7}{mark} {sample['rss_mb']:7.1f} {heap} {sample['blocks'] / 1000:6.1f} "
        f"{sample['objects']:>4} {sample['tracks_total']:>6}  {held}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=50_000, help="frames to process (default 50000)")
    parser.add_argument("--report-every", type=int, default=1000, help="sample every K frames (default 1000)")
    parser.add_argument("--tracemalloc", action="store_true", help="record the Python heap (3-4x slower)")
    parser.add_argument("--output", type=Path, default=Path("soak.json"), help="JSON report (default soak.json)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the scene (default 0)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=20.0, help="over the second half (default 20)")
    args = parser.parse_args(argv)

    print(_header())
    print(
        "  tracks held now/most since the previous row; kobj: live Python objects (thousands); "
        "q: quiet point (heap and kobj without ByteTrack's removed-track history)"
    )
    try:
        result = run_soak(
            args.frames,
            args.report_every,
            "run" if args.tracemalloc else "off",
            Scenario(seed=args.seed),
            on_sample=lambda sample: print(_row(sample), flush=True),
        )
    except ValueError as exc:
        parser.error(str(exc))
    outcome = verdict(result, args.max_rss_growth_mb)
    print(
        f"\n{result.frames} frames in {result.seconds} s: {result.objects_spawned} objects, "
        f"{result.distinct_tracks} distinct track IDs, events {result.events}"
    )
    print("bounds:", {name: result.bounds[name] for name in STRUCTURES})
    report: dict[str, Any] = {**asdict(result), "verdict": outcome}
    del report["pipeline_sites"]
    if result.pipeline_sites:
        growth = [item for item in site_growth(result) if item[1] or item[2]][:8]
        report["pipeline_site_growth"] = {"from": result.quiet_at[0], "to": result.quiet_at[-1], "sites": growth}
        print(f"pipeline/ allocation sites growing most from quiet frame {result.quiet_at[0]} to {result.frames}:")
        for site, size, count in growth:
            print(f"  {site:<40} {size:+9d} B {count:+7d} blocks")
    for item in outcome["checks"]:
        if not item["ok"] or item["check"] in ("rss growth", "python objects", "heap growth"):
            print(f"{'ok  ' if item['ok'] else 'FAIL'} {item['check']}: {item['detail']}")
    if not outcome["passed"] and not result.pipeline_sites:
        print("  (--tracemalloc shows which pipeline/ lines allocate what stays)")
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"verdict: {'PASS' if outcome['passed'] else 'FAIL'} (report in {args.output})")
    return 0 if outcome["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
