"""Turning movements: from which approach each track came and by which one it left.

Every approach is a named polygon, a gate line across the leg (the stop line or crosswalk), or both;
each is an entry and an exit. A track's anchor (bottom centre of the box) enters an approach when it
is in its polygon or crosses its gate ``in`` (toward the intersection: the gate's points go with the
intersection on their right, the geometry of :class:`~pipeline.analytics.lines.LineCounter` with its
hysteresis), and leaves by one when it is in its polygon or crosses its gate ``out``. The
intersection (the box) is the convex hull of every approach. Rules (each has an exact test in
``tests/test_movements.py`` or ``tests/test_movement_rules.py``):

- A track's origin is the first approach it enters (tracks usually appear before their first
  approach, at the frame's edge); leaving by a gate it never entered is no origin. A track that is
  in no approach is no movement.
- A track first seen inside the box (an ID switch after an occlusion) takes its origin from its path
  backwards: its heading over its first ``window_s`` extended back until it meets an approach, within
  the box's size. It then continues the last track from that origin that was lost inside the box
  before it appeared, if one is still held (that one counts nothing). Its movement is ``inferred``.
  A path that leads back to no approach leaves the old rule: the first approach it enters.
- Reaching another approach is the movement ``origin->destination``, reported on that frame.
- Coming back into the origin is a U-turn ``A->A`` only with evidence that the track left: after at
  least ``min_outside_s`` outside every approach, its anchor went beyond the origin by at least its own
  box size and :data:`U_TURN_REACH` of the way to the intersection's centre (the mean of the
  approaches' centres). A queued vehicle jittering on its approach's edge never is one, at any frame
  rate.
- A track that left its origin and vanishes for longer than ``forget_after_s`` (the tracker's
  buffer and a margin) without reaching an exit is reported at its last sighting: if it was lost
  inside the box heading somewhere, as ``A->B`` (``inferred``) to the first approach its heading
  meets within the box's size, else as ``A->?``. One that is found again within that time (the
  same track ID) carries on.
- A new track ID that appears where a vanished track (one with an origin, not seen on this frame,
  within ``forget_after_s``) would be by now continues it (the rule is in
  :mod:`pipeline.analytics.continuation`): it keeps that origin, and the vanished ID counts nothing.
- A track counts one movement at most; its state is forgotten ``forget_after_s`` after its last
  sighting, so memory is bounded by the tracks on screen.

Example:
    >>> import numpy as np
    >>> west = [(0, 0), (100, 0), (100, 200), (0, 200)]
    >>> east = Approach.placed(None, [(300, 0), (300, 200)])  # a gate: the intersection on its right
    >>> counter = MovementCounter({"West": west, "East": east})
    >>> events = []
    >>> for frame_index, x in enumerate([50, 150, 250, 350]):  # one car driving east
    ...     detections = sv.Detections(
    ...         xyxy=np.array([[x - 10.0, 80.0, x + 10.0, 100.0]]), class_id=np.array([2]),
    ...         tracker_id=np.array([7]), data={"class_name": np.array(["car"])})
    ...     events += counter.update(detections, frame_index, frame_index / 10)
    >>> [(e.movement, e.track_id, e.frame_index, e.origin_frame, e.inferred) for e in events]
    [('West->East', 7, 3, 0, False)]
    >>> counter.counts[("West", "East")]
    Counter({'car': 1})
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import supervision as sv

from pipeline.analytics.approaches import Approach, Intersection, heading
from pipeline.analytics.class_groups import ClassGroups
from pipeline.analytics.continuation import MotionTrail
from pipeline.analytics.events import Direction, Movement
from pipeline.analytics.lines import LineCounter, tracked_anchors
from pipeline.analytics.movement_tracks import Sighting, TrackState, continue_vanished
from pipeline.analytics.turns import turn_table
from pipeline.config.columns import movement_name
from pipeline.geometry import Point

U_TURN_REACH = 0.5
"""Share of the way from its origin to the intersection's centre that a track's anchor must get before
coming back is a U-turn: a queued vehicle's anchor jitters by a fraction of its box, a vehicle that
turns round drives out into the intersection."""


class MovementCounter:
    """Counts origin-destination movements between named approaches, per class.

    Args:
        approaches: Approach name to an :class:`Approach`, or to polygon vertices (pixels); each is an
            entry and an exit.
        min_outside_s: Time outside every approach before coming back into the origin is a U-turn.
        forget_after_s: A track not seen for this long is closed (``A->?`` if it left its origin).
        min_crossing_distance: Pixels beyond a gate an anchor must reach to confirm a crossing.

    Attributes:
        counts: Per (origin, destination), with None for an unknown end, the count per class name.
        inferred: Per (origin, destination), how many of its movements are ``inferred``.
        stayed: Per approach, tracks that vanished without ever leaving it (no movement: a car
            that turned off out of view, or a short-lived false detection).
    """

    def __init__(
        self,
        approaches: Mapping[str, Approach | Sequence[Point]],
        min_outside_s: float = 0.5,
        forget_after_s: float = 2.0,
        min_crossing_distance: float = 6.0,
    ) -> None:
        self.names = list(approaches)
        self.approaches = {name: Approach.of(approach) for name, approach in approaches.items()}
        self.min_outside_s = min_outside_s
        self.forget_after_s = forget_after_s
        self._gates = {
            name: LineCounter(name, a.gate.start, a.gate.end, min_crossing_distance, forget_after_s=forget_after_s)
            for name, a in self.approaches.items()
            if a.gate is not None
        }
        self._layout()
        self.counts: dict[tuple[str | None, str | None], Counter[str]] = {}
        self.inferred: Counter[tuple[str | None, str | None]] = Counter()
        self.stayed: Counter[str] = Counter()
        self._tracks: dict[int, TrackState] = {}

    def _layout(self) -> None:
        """What follows from where the approaches are (again after a rescale)."""
        self._intersection = Intersection(self.approaches)
        centre = self._intersection.centre
        self._u_turn_reach = {name: U_TURN_REACH * a.distance_beyond(centre) for name, a in self.approaches.items()}
        self.turns = turn_table(self.approaches, centre)

    @property
    def polygons(self) -> dict[str, np.ndarray]:
        """Each approach's outline for the overlay: its polygon, else its gate's two points."""
        return {name: approach.outline for name, approach in self.approaches.items()}

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
        self.approaches = {name: approach.scaled(sx, sy) for name, approach in self.approaches.items()}
        for gate in self._gates.values():
            gate.rescale(sx, sy)
        self._layout()

    def update(self, detections: sv.Detections, frame_index: int, timestamp_s: float) -> list[Movement]:
        """Advance by one frame of tracked detections; returns the movements completed on it."""
        tracked = tracked_anchors(detections)
        inside = {name: zone.trigger(detections) for name, zone in self._intersection.zones.items()} if tracked else {}
        crossings: dict[int, list[tuple[str, Direction, float]]] = defaultdict(list)
        for name, gate in self._gates.items():
            for crossing in gate.update(detections, frame_index, timestamp_s):
                crossed_s = crossing.crossed_s if crossing.crossed_s is not None else timestamp_s
                crossings[crossing.track_id].append((name, crossing.direction, crossed_s))
        continue_vanished(self._tracks, tracked, frame_index, timestamp_s, self.forget_after_s)
        sizes = detections.xyxy[:, 2:] - detections.xyxy[:, :2]
        events: list[Movement] = []
        for row, (track_id, anchor, class_name) in enumerate(tracked):
            approach = next((name for name in self._intersection.zones if inside[name][row]), None)
            track = self._tracks.get(track_id)
            if track is None:
                track = self._tracks[track_id] = TrackState(
                    None, frame_index, timestamp_s, timestamp_s, frame_index, ""
                )
                if approach is None and self._intersection.contains(anchor):
                    track.birth = MotionTrail()
            track.last_seen_s, track.last_seen_frame, track.class_name = timestamp_s, frame_index, class_name
            size = (float(sizes[row][0]), float(sizes[row][1]))
            track.trail.add(timestamp_s, anchor, size)
            if track.done:
                continue
            seen = Sighting(anchor, size, approach, crossings[track_id], timestamp_s)
            if track.origin is None:
                self._find_origin(track_id, track, seen)
            destination = self._advance(track, seen)
            if destination is not None:
                events.append(self._complete(track_id, track, destination, frame_index, timestamp_s))
        events += self._forget_stale(timestamp_s)
        return events

    def _find_origin(self, track_id: int, track: TrackState, seen: Sighting) -> None:
        """Give a track without an origin one: from its path backwards if it was first seen inside the
        box, else the approach it enters now (its polygon, or its gate crossed ``in``)."""
        now_s = seen.now_s
        if track.birth is not None:
            if now_s - track.origin_s <= track.birth.window_s:
                track.birth.add(now_s, seen.anchor, seen.size)
            origin = self._intersection.path_meets(track.birth.first, heading(track.birth, backwards=True))
            if origin is not None:
                track.origin, track.inferred, track.birth = origin, True, None
                track.entered_s = track.origin_s  # already in the box when first seen
                track.origin_guessed = not self._join_lost(track_id, track)
                return
            if now_s - track.origin_s > track.birth.window_s:
                track.birth = None  # no heading back to an approach: the old rule below
        gate = next(((name, crossed_s) for name, direction, crossed_s in seen.crossings if direction == "in"), None)
        entered = seen.approach or (gate[0] if gate else None)
        if entered is not None:
            track.origin, track.origin_s = entered, now_s
            track.gate_s = gate[1] if gate is not None and gate[0] == entered else None
            track.origin_frame, track.birth = track.last_seen_frame, None
            seen.crossings.clear()  # the crossing that made the origin is not also a way out

    def _join_lost(self, track_id: int, track: TrackState) -> bool:
        """A track first seen in the box, come from ``track.origin``, continues the track from there
        last lost inside the box before it appeared, if one is still held: the same vehicle under a new
        ID that :func:`continue_vanished` could not place. It takes that one's origin time; whether it
        found one."""
        lost = [
            (other.last_seen_s, other_id)
            for other_id, other in self._tracks.items()
            if other_id != track_id
            and other.origin == track.origin
            and not other.done
            and other.left_origin_s is not None
            and other.last_seen_frame < track.origin_frame
            and self._intersection.contains(other.trail.last)
        ]
        if lost:
            other = self._tracks[max(lost)[1]]
            track.origin_frame, track.origin_s, other.done = other.origin_frame, other.origin_s, True
            track.entered_s = other.entered_s
        return bool(lost)

    def _advance(self, track: TrackState, seen: Sighting) -> str | None:
        """Follow a track with an origin; the destination of the movement it completes now, if any."""
        if track.origin is None:
            return None
        reached = [seen.approach] if seen.approach is not None else []
        reached += [name for name, direction, _ in seen.crossings if direction == "out"]
        for destination in reached:
            if destination != track.origin:
                return destination
            if track.went_far and track.outside_s >= self.min_outside_s:
                return destination  # a U-turn: it really left, and came back
            track.left_origin_s, track.outside_s, track.went_far = None, 0.0, False  # still (or back) at the entry
            return None
        if track.left_origin_s is None:
            track.left_origin_s = seen.now_s
            if not track.inferred:  # into the box: by the gate it crossed in, else now, out of the polygon
                track.entered_s = track.gate_s if track.gate_s is not None else seen.now_s
            track.gate_s = None
        track.outside_s = max(track.outside_s, seen.now_s - track.left_origin_s)
        reach = max(*seen.size, self._u_turn_reach[track.origin])
        track.went_far = track.went_far or self.approaches[track.origin].distance_beyond(seen.anchor) >= reach
        return None

    def _complete(
        self,
        track_id: int,
        track: TrackState,
        destination: str | None,
        frame_index: int,
        now_s: float,
        destination_inferred: bool = False,
    ) -> Movement:
        track.done = True
        inferred = track.inferred or destination_inferred
        event = Movement(
            frame_index,
            now_s,
            movement_name(track.origin, destination),
            track.origin,
            destination,
            track.origin_frame,
            track.origin_s,
            now_s - track.origin_s,
            inferred,
            self.turns.get((track.origin, destination)) if track.origin and destination else None,
            track.entered_s,
            track_id=track_id,
            class_name=track.class_name,
        )
        self.record(event)
        return event

    def record(self, movement: Movement) -> None:
        """Add ``movement`` to the counts (one this counter found, or an earlier run's)."""
        key = (movement.origin, movement.destination)
        self.counts.setdefault(key, Counter())[movement.class_name] += 1
        self.inferred[key] += movement.inferred

    def _forget_stale(self, now_s: float) -> list[Movement]:
        events = []
        for track_id, track in list(self._tracks.items()):
            if now_s - track.last_seen_s <= self.forget_after_s:
                continue
            del self._tracks[track_id]
            if track.done or track.origin is None or track.origin_guessed:
                continue
            if track.left_origin_s is None:
                self.stayed[track.origin] += 1
                continue
            # Lost inside the box: its destination is where it was heading, if that leads to an exit.
            ahead = (
                self._intersection.path_meets(track.trail.last, heading(track.trail))
                if self._intersection.contains(track.trail.last)
                else None
            )
            destination = ahead if ahead != track.origin else None  # a U-turn needs to be seen
            event = self._complete(
                track_id, track, destination, track.last_seen_frame, track.last_seen_s, destination is not None
            )
            events.append(event)
        return events

    def in_progress(self) -> dict[str, int]:
        """Tracks that left their origin and have not reached an exit yet, per origin."""
        waiting: Counter[str] = Counter()
        for track in self._tracks.values():
            if not track.done and track.origin is not None and track.left_origin_s is not None:
                waiting[track.origin] += 1
        return dict(waiting)

    def summary(self, groups: ClassGroups | None = None) -> dict[str, object]:
        """The ``movements`` section of ``summary.json`` (see :func:`movements_summary`)."""
        return movements_summary(self, groups)


def movement_count(classes: Mapping[str, int], groups: ClassGroups | None = None) -> dict[str, object]:
    """One movement's entry in ``summary.json`` ``movements.counts``: its total, its count per class and
    (with ``groups``) per class group."""
    entry: dict[str, object] = {"total": sum(classes.values()), "by_class": dict(sorted(classes.items()))}
    if groups is not None:
        entry["by_group"] = groups.regroup(classes)
    return entry


def movements_summary(counter: MovementCounter, groups: ClassGroups | None = None) -> dict[str, object]:
    """Every named pair (zeros included), then the movements that reached no exit, each with its
    total, its count per class (and class group) and its turn; how many of each movement were inferred
    (those with any); tracks that stayed in their origin; tracks still on their way."""
    keys: list[tuple[str | None, str | None]] = [*counter.pairs]
    keys += sorted((k for k in counter.counts if k not in keys), key=lambda k: movement_name(*k))
    counts = {movement_name(*key): movement_count(counter.counts.get(key, Counter()), groups) for key in keys}
    for (origin, destination), turn in counter.turns.items():
        counts[movement_name(origin, destination)]["turn"] = turn
    return {
        "counts": counts,
        "inferred": {movement_name(*key): counter.inferred[key] for key in keys if counter.inferred[key]},
        "stayed_in_origin": dict(sorted(counter.stayed.items())),
        "in_progress_at_end": counter.in_progress(),
    }
