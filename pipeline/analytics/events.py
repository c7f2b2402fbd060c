"""Events emitted by the analytics stage and written, one JSON object each, to ``events.jsonl``.

Every record starts with ``"event"`` (its type), then ``frame_index`` and ``timestamp_s``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class Event:
    """Base of all events: when it happened."""

    event_type: ClassVar[str] = "event"
    frame_index: int
    timestamp_s: float

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready form, tagged with its event type; floats rounded for readability."""
        fields = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        return {"event": self.event_type, **fields}


@dataclass(frozen=True)
class LineCrossing(Event):
    """A track's anchor crossed a counting line.

    Attributes:
        line: The line's name.
        direction: ``in`` (negative to positive side of cross(end - start, anchor - start)) or ``out``.
        track_id: The tracker's ID.
        class_name: The track's majority class.
        lane: The lane (sub-segment of the line) it crossed, if the line has lanes.
        speed_kmh: The track's smoothed speed, if speed calibration is configured and plausible.
    """

    event_type: ClassVar[str] = "line_crossing"
    line: str
    direction: Direction
    track_id: int
    class_name: str
    lane: str | None = None
    speed_kmh: float | None = None


@dataclass(frozen=True)
class ZoneEnter(Event):
    """A track's anchor entered a zone."""

    event_type: ClassVar[str] = "zone_enter"
    zone: str
    track_id: int
    class_name: str
    speed_kmh: float | None = None


@dataclass(frozen=True)
class ZoneExit(Event):
    """A track left a zone (or vanished from it for longer than the tracker's buffer; then the
    event's frame and timestamp are those of its last sighting inside).

    Attributes:
        dwell_s: Time from entering to leaving, from the video timestamps.
    """

    event_type: ClassVar[str] = "zone_exit"
    zone: str
    track_id: int
    class_name: str
    dwell_s: float
    speed_kmh: float | None = None


@dataclass(frozen=True)
class SlotChange(Event):
    """A parking slot's debounced state changed; the time is when the change began."""

    event_type: ClassVar[str] = "slot_change"
    slot: str
    occupied: bool

    def to_record(self) -> dict[str, Any]:
        return {**super().to_record(), "event": "slot_occupied" if self.occupied else "slot_free"}


@dataclass(frozen=True)
class Movement(Event):
    """A track went from one approach to another (or back to the same: a U-turn).

    The event's frame and timestamp are when the track reached its destination; for a track that
    left its origin and vanished before reaching any exit (``destination`` None), its last sighting.

    Attributes:
        movement: ``origin->destination``, ``origin->?`` if it reached no exit.
        origin: The first approach the track was seen in.
        destination: The approach it reached; None if it reached none.
        track_id: The tracker's ID.
        class_name: The track's majority class.
        origin_frame: The frame it was first seen in its origin on.
        origin_s: When it was first seen in its origin.
        travel_s: From ``origin_s`` to this event.
        speed_kmh: The track's smoothed speed at the event, if speed calibration is configured.
    """

    event_type: ClassVar[str] = "movement"
    movement: str
    origin: str
    destination: str | None
    track_id: int
    class_name: str
    origin_frame: int
    origin_s: float
    travel_s: float
    speed_kmh: float | None = None
