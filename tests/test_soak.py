"""Soak: per-track state, trails and queues stay bounded while thousands of tracks come and go.

Runs the soak of ``scripts/soak.py`` in-process, shortened to 5,000 frames (2.8 min of video), with a
cheaper scene: two parking slots instead of eight, shorter stays and visits, 0.5 s trails, and no
boxes or labels (supervision's box and label annotators keep no state between frames). Every bound
comes from the scenario's parameters (``scenario_bounds`` in the script), not from observed numbers.
The full-length run is ``python scripts/soak.py``.
"""

from __future__ import annotations

import gc
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import supervision as sv

from pipeline.config import DrawConfig

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "soak.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vpipe_soak_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


soak = _load_script()

FRAMES = 5000
SCENARIO = soak.Scenario(slots=2, park_frames=(45, 90), lane_span=(250.0, 390.0), trail_seconds=0.5)
DRAW = DrawConfig(boxes=False, labels=False, trail_seconds=0.5)
MIN_TRACKS = 2000
"""Thousands of tracks: about 0.5 arrivals per frame over the ~4,500 frames that have arrivals."""


@pytest.fixture(scope="module")
def run() -> Any:
    # tracemalloc from the first quiet point on: a third of the cost of tracing the whole run, and
    # what it holds at the end is exactly what the last two thirds allocated and still keep.
    return soak.run_soak(FRAMES, report_every=250, trace_heap="from-first-quiet", scenario=SCENARIO, draw=DRAW)


def test_thousands_of_tracks_come_and_go(run: Any) -> None:
    assert run.distinct_tracks >= MIN_TRACKS
    # The bounds assume at most ID_SPLIT IDs per object; the run keeps well inside that.
    assert run.distinct_tracks <= soak.ID_SPLIT * run.objects_spawned
    assert run.events["line_crossing"] >= MIN_TRACKS // 2 and run.events["zone_exit"] >= MIN_TRACKS // 2
    assert run.events["slot_change"] > 0


def test_every_per_track_structure_stays_under_its_scenario_bound(run: Any) -> None:
    bounds = run.bounds
    for name in soak.STRUCTURES:
        peak = max(sample["held_max"][name] for sample in run.samples)
        assert peak <= bounds[name], f"{name} held {peak} tracks, more than the scenario allows ({bounds[name]})"
        # A structure that never forgot a track would hold them all: the bound would catch it.
        assert bounds[name] < run.distinct_tracks / 2
    for sample in run.quiet_samples():  # no object for longer than any retention window: nothing held
        assert {name: n for name, n in sample["held"].items() if n and name != "bt_removed"} == {}


def test_heap_at_the_end_is_within_a_fixed_margin_of_the_heap_at_a_third(run: Any) -> None:
    first, last = run.sample_at(run.quiet_at[0]), run.sample_at(FRAMES)
    assert run.quiet_at == [round(FRAMES / 3), FRAMES]
    tracks_between = last["tracks_total"] - first["tracks_total"]
    # The margins are meaningful: keeping one per-track record (>= 200 B: a line's _TrackState with
    # its set, a vote Counter, a trail deque, an STrack), or one object, per track would exceed them.
    assert tracks_between * 200 > soak.HEAP_MARGIN_BYTES and tracks_between > soak.BLOCK_MARGIN
    heap_growth = (last["heap_mb"] - first["heap_mb"]) * 2**20
    assert heap_growth < soak.HEAP_MARGIN_BYTES, f"heap grew {heap_growth / 1024:.0f} KiB over {tracks_between} tracks"
    assert last["blocks"] - first["blocks"] < soak.BLOCK_MARGIN, "live Python objects grew"
    assert last["rss_mb"] - first["rss_mb"] < 20


def _crossing_cars(frames: int, first_id: int) -> list[sv.Detections]:
    """A car a frame entering the ``eb1`` lane, each crossing ``gate`` once at a known speed. The boxes are
    narrower than the lane's 9 px a frame between cars: boxes lying one inside the other would be one
    object to the counting lines."""
    lane = SCENARIO.lanes[0]
    x0, x1 = 200.0, 440.0
    life = int((x1 - x0) / lane.speed)
    stream = []
    for frame in range(frames):
        cars = range(max(0, frame - life + 1), frame + 1)
        xs = np.array([x0 + lane.speed * (frame - car) for car in cars])
        stream.append(
            sv.Detections(
                xyxy=np.column_stack([xs - 4, np.full(len(xs), lane.y - 30), xs + 4, np.full(len(xs), lane.y)]),
                class_id=np.full(len(xs), 2),
                tracker_id=np.array([first_id + car for car in cars]),
                data={"class_name": np.array(["car"] * len(xs))},
            )
        )
    return stream


def test_analytics_memory_does_not_grow_with_the_number_of_crossings() -> None:
    analytics = soak.build_analytics(SCENARIO)
    empty = sv.Detections(
        xyxy=np.empty((0, 4)), class_id=np.empty(0, int), tracker_id=np.empty(0, int), data={"class_name": np.array([])}
    )
    frame = 0

    def play(detections: list[sv.Detections]) -> None:
        nonlocal frame
        for item in [*detections, *[empty] * 90]:  # then 3 s of nothing: every track is forgotten
            analytics.update(item, frame, frame / SCENARIO.fps)
            frame += 1

    play(_crossing_cars(300, first_id=1))  # warm up: every counter and cache has seen a crossing
    gc.collect()
    before = sys.getallocatedblocks()
    play(_crossing_cars(1200, first_id=1000))
    gc.collect()
    assert analytics.row()["gate_in"] + analytics.row()["gate_out"] >= 1400  # every car crossed (each with a speed)
    # 1,200 more crossings: per-crossing storage would add at least one object each.
    assert sys.getallocatedblocks() - before < 200
