"""The movement counter's state of each track, and how a new track ID takes over a vanished one's.

A track's state says where it came from (its origin, seen or inferred), where it has been since
(outside every approach, far enough out for a U-turn), and its recent anchors: to tell which new
track ID continues it if the tracker loses it (:mod:`pipeline.analytics.continuation`), and where it
was heading.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pipeline.analytics.continuation import MotionTrail, continuations
from pipeline.analytics.events import Direction
from pipeline.geometry import Point


@dataclass(frozen=True)
class Sighting:
    """One frame's view of a track: where its anchor is, its box's (width, height), the approach
    polygon it is in (None: none), the gates it crossed (name and direction), and when."""

    anchor: Point
    size: tuple[float, float]
    approach: str | None
    crossings: list[tuple[str, Direction, float]]
    """(gate, direction, when the anchor crossed it) of the gates crossed on this frame."""
    now_s: float


@dataclass
class TrackState:
    origin: str | None
    """None until the track first enters an approach (or one is inferred)."""
    origin_frame: int
    origin_s: float
    last_seen_s: float
    last_seen_frame: int
    class_name: str
    left_origin_s: float | None = None
    """When the anchor was last seen leaving every approach (None while inside one)."""
    entered_s: float | None = None
    """When it entered the intersection from its origin: crossed its gate inbound, or was first seen out
    of its polygon (the latest time it left, after jittering back); for an origin inferred from its path,
    its first sighting (or the lost track's entry it continues)."""
    gate_s: float | None = None
    """When it crossed its origin's gate inbound, until it leaves the origin."""
    outside_s: float = 0.0
    """Longest time spent outside every approach since the origin."""
    went_far: bool = False
    """Whether the anchor got far enough beyond the origin for coming back to be a U-turn."""
    done: bool = False
    inferred: bool = False
    """Whether its origin rests on its path backwards (or on the lost track it continues)."""
    origin_guessed: bool = False
    """Whether its origin rests on its path alone (no lost track continued): then only reaching an exit
    makes it a movement, one end at least seen."""
    trail: MotionTrail = field(default_factory=MotionTrail)
    """Recent anchors, to tell which new track ID continues this one if the tracker loses it, and where
    it was heading."""
    birth: MotionTrail | None = None
    """The first anchors of a track first seen inside the box, to tell where it came from."""


def continue_vanished(
    tracks: dict[int, TrackState],
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
