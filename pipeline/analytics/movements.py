"""Turning movements: from which approach each track came and by which one it left.

Every approach is a named polygon that serves as both an entry and an exit. Rules (each has an
exact test in ``tests/test_movements.py``):

- A track's origin is the first approach its anchor (bottom centre of the box) is seen in (tracks
  usually appear before their first approach, at the frame's edge); a track that is in no approach
  is no movement. A track that first appears inside the intersection (an ID switch after an
  occlusion) therefore takes the first approach it reaches as its origin.
- Reaching another approach is the movement ``origin->destination``, reported on that frame.
- Coming back into the origin after at least ``min_outside_s`` outside every approach is a U-turn
  ``A->A`` (a box jittering on the zone's edge is never one).
- A track that left its origin and vanishes for longer than ``forget_after_s`` (the tracker's
  buffer and a margin) without reaching an exit is reported as ``A->?`` at its last sighting; one
  that is found again within that time (the same track ID) carries on.
- A new track ID that appears where a vanished track (one with an origin, not seen on this frame,
  within ``forget_after_s``) would be by now continues it (the rule is in
  :mod:`pipeline.analytics.continuation`): it keeps that origin, and the vanished ID counts nothing.
- A track counts one movement at most; its state is forgotten ``forget_after_s`` after its last
  sighting, so memory is bounded by the tracks on screen.

Example:
    >>> import numpy as np
    >>> west = [(0, 0), (100, 0), (100, 200), (0, 200)]
    >>> east = [(300, 0), (400, 0), (400, 200), (300, 200)]
    >>> counter = MovementCounter({"West": west, "East": east})
    >>> events = []
    >>> for frame_index, x in enumerate([50, 150, 250, 350]):  # one car driving east
    ...     detections = sv.Detections(
    ...         xyxy=np.array([[x - 10.0, 80.0, x + 10.0, 100.0]]), class_id=np.array([2]),
    ...         tracker_id=np.array([7]), data={"class_name": np.array(["car"])})
    ...     events += counter.update(detections, frame_index, frame_index / 10)
    >>> [(e.movement, e.track_id, e.frame_index, e.origin_frame) for e in events]
    [('West->East', 7, 3, 0)]
    >>> counter.counts[("West", "East")]
    Counter({'car': 1})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import supervision as sv

from pipeline.analytics.continuation import MotionTrail, continuations
from pipeline.analytics.events import Movement
from pipeline.analytics.lines import tracked_anchors
from pipeline.geometry import Point

UNKNOWN = "?"
"""The destination's name in a movement that reached no exit (``West->?``)."""


def movement_name(origin: str | None, destination: str | None) -> str:
    """``origin->destination`` with ``?`` for no destination.

    Example:
        >>> movement_name("West", None)
        'West->?'
    """
    return f"{origin or UNKNOWN}->{destination or UNKNOWN}"


@dataclass
class _Track:
    origin: str | None
    """None until the track is first seen inside an approach."""
    origin_frame: int
    origin_s: float
    last_seen_s: float
    last_seen_frame: int
    class_name: str
    left_origin_s: float | None = None
    """When the anchor was last seen leaving every approach (None while inside one)."""
    outside_s: float = 0.0
    """Longest time spent outside every approach since the origin."""
    done: bool = False
    trail: MotionTrail = field(default_factory=MotionTrail)
    """Recent anchors, to tell which new track ID continues this one if the tracker loses it."""

    def arrive(self, approach: str | None, frame_index: int, now_s: float, min_outside_s: float) -> bool:
        """Record the approach the anchor is in now (None: outside every one); whether that completes
        a movement, to ``approach``."""
        if self.done:
            return False
        if self.origin is None:  # not in an approach yet: the first one it enters is where it came from
            if approach is not None:
                self.origin, self.origin_frame, self.origin_s = approach, frame_index, now_s
            return False
        if approach is None:
            if self.left_origin_s is None:
                self.left_origin_s = now_s
            self.outside_s = max(self.outside_s, now_s - self.left_origin_s)
            return False
        if approach == self.origin and self.outside_s < min_outside_s:
            self.left_origin_s, self.outside_s = None, 0.0  # still (or back) at the entry: not a U-turn
            return False
        return True


def continue_vanished(
    tracks: dict[int, _Track],
    tracked: list[tuple[int, Point, str]],
    frame_index: int,
    now_s: float,
    forget_after_s: float,
) -> None:
    """Give each new track ID in ``tracked`` that continues a vanished track (see
    :mod:`pipeline.analytics.continuation`) that track's state; the vanished one is marked done, so
    it counts nothing if its ID comes back."""
    new = {track_id: anchor for track_id, anchor, _ in tracked if track_id not in tracks}
    vanished = {
        track_id: track.trail
        for track_id, track in tracks.items()
        if track.origin is not None
        and not track.done
        and track.last_seen_frame < frame_index
        and now_s - track.last_seen_s <= forget_after_s
    }
    if not new or not vanished:
        return
    for new_id, old_id in continuations(new, vanished, now_s).items():
        tracks[new_id] = replace(tracks[old_id])
        tracks[old_id].done = True


class MovementCounter:
    """Counts origin-destination movements between named approach polygons, per class.

    Args:
        approaches: Approach name to polygon vertices (pixels); each is an entry and an exit.
        min_outside_s: Time outside every approach before coming back into the origin is a U-turn.
        forget_after_s: A track not seen for this long is closed (``A->?`` if it left its origin).

    Attributes:
        counts: Per (origin, destination), with None for an unknown end, the count per class name.
        stayed: Per approach, tracks that vanished without ever leaving it (no movement: a car
            that turned off out of view, or a short-lived false detection).
    """

    def __init__(
        self,
        approaches: Mapping[str, Sequence[tuple[float, float]]],
        min_outside_s: float = 0.5,
        forget_after_s: float = 2.0,
    ) -> None:
        self.names = list(approaches)
        self.polygons = {name: np.asarray(polygon, dtype=float) for name, polygon in approaches.items()}
        self.min_outside_s = min_outside_s
        self.forget_after_s = forget_after_s
        self._zones = _anchor_zones(self.polygons)
        self.counts: dict[tuple[str | None, str | None], Counter[str]] = {}
        self.stayed: Counter[str] = Counter()
        self._tracks: dict[int, _Track] = {}

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Every (origin, destination) between named approaches, U-turns included, in config order."""
        return [(origin, destination) for origin in self.names for destination in self.names]

    @property
    def tracks_held(self) -> int:
        """Tracks with state in memory (bounded: forgotten after ``forget_after_s``)."""
        return len(self._tracks)

    def total(self, origin: str | None, destination: str | None) -> int:
        """Movements from ``origin`` to ``destination``, all classes."""
        return sum(self.counts.get((origin, destination), Counter()).values())

    def rescale(self, sx: float, sy: float) -> None:
        """Follow a change of the source's resolution; counts and tracks are kept."""
        self.polygons = {name: polygon * (sx, sy) for name, polygon in self.polygons.items()}
        self._zones = _anchor_zones(self.polygons)

    def update(self, detections: sv.Detections, frame_index: int, timestamp_s: float) -> list[Movement]:
        """Advance by one frame of tracked detections; returns the movements completed on it."""
        tracked = tracked_anchors(detections)
        inside = {name: zone.trigger(detections) for name, zone in self._zones.items()} if tracked else {}
        continue_vanished(self._tracks, tracked, frame_index, timestamp_s, self.forget_after_s)
        sizes = detections.xyxy[:, 2:] - detections.xyxy[:, :2]
        events: list[Movement] = []
        for row, (track_id, anchor, class_name) in enumerate(tracked):
            approach = next((name for name in self.names if inside[name][row]), None)
            event = self._update_track(track_id, approach, class_name, frame_index, timestamp_s)
            self._tracks[track_id].trail.add(timestamp_s, anchor, (float(sizes[row][0]), float(sizes[row][1])))
            if event is not None:
                events.append(event)
        events += self._forget_stale(timestamp_s)
        return events

    def _update_track(
        self, track_id: int, approach: str | None, class_name: str, frame_index: int, now_s: float
    ) -> Movement | None:
        track = self._tracks.get(track_id)
        if track is None:
            track = self._tracks[track_id] = _Track(None, frame_index, now_s, now_s, frame_index, class_name)
        track.last_seen_s, track.last_seen_frame, track.class_name = now_s, frame_index, class_name
        if not track.arrive(approach, frame_index, now_s, self.min_outside_s):
            return None
        return self._complete(track_id, track, approach, frame_index, now_s)

    def _complete(
        self, track_id: int, track: _Track, destination: str | None, frame_index: int, now_s: float
    ) -> Movement:
        track.done = True
        event = Movement(
            frame_index,
            now_s,
            movement_name(track.origin, destination),
            track.origin,
            destination,
            track.origin_frame,
            track.origin_s,
            now_s - track.origin_s,
            track_id=track_id,
            class_name=track.class_name,
        )
        self.record(event)
        return event

    def record(self, movement: Movement) -> None:
        """Add ``movement`` to the counts (one this counter found, or an earlier run's)."""
        self.counts.setdefault((movement.origin, movement.destination), Counter())[movement.class_name] += 1

    def _forget_stale(self, now_s: float) -> list[Movement]:
        events = []
        for track_id, track in list(self._tracks.items()):
            if now_s - track.last_seen_s <= self.forget_after_s:
                continue
            del self._tracks[track_id]
            if track.done or track.origin is None:
                continue
            if track.left_origin_s is None:
                self.stayed[track.origin] += 1
            else:
                events.append(self._complete(track_id, track, None, track.last_seen_frame, track.last_seen_s))
        return events

    def in_progress(self) -> dict[str, int]:
        """Tracks that left their origin and have not reached an exit yet, per origin."""
        waiting: Counter[str] = Counter()
        for track in self._tracks.values():
            if not track.done and track.origin is not None and track.left_origin_s is not None:
                waiting[track.origin] += 1
        return dict(waiting)

    def summary(self) -> dict[str, object]:
        """The ``movements`` section of ``summary.json`` (see :func:`movements_summary`)."""
        return movements_summary(self)


def movement_count(classes: Mapping[str, int]) -> dict[str, object]:
    """One movement's entry in ``summary.json`` ``movements.counts``: its total and its count per class."""
    return {"total": sum(classes.values()), "by_class": dict(sorted(classes.items()))}


def movements_summary(counter: MovementCounter) -> dict[str, object]:
    """Every named pair (zeros included), then the movements that reached no exit, each with its
    total and its count per class; tracks that stayed in their origin; tracks still on their way."""
    keys: list[tuple[str | None, str | None]] = [*counter.pairs]
    keys += sorted((k for k in counter.counts if k not in keys), key=lambda k: movement_name(*k))
    return {
        "counts": {movement_name(*key): movement_count(counter.counts.get(key, Counter())) for key in keys},
        "stayed_in_origin": dict(sorted(counter.stayed.items())),
        "in_progress_at_end": counter.in_progress(),
    }


def _anchor_zones(polygons: Mapping[str, np.ndarray]) -> dict[str, sv.PolygonZone]:
    """A zone per approach that a detection is in when its bottom-centre anchor is."""
    return {
        name: sv.PolygonZone(polygon.round().astype(int), triggering_anchors=(sv.Position.BOTTOM_CENTER,))
        for name, polygon in polygons.items()
    }
