"""Events emitted by the analytics stage and written, one JSON object each, to ``events.jsonl``.

Every record starts with ``"event"`` (its type), then ``frame_index`` and ``timestamp_s``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
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


@dataclass(frozen=True, kw_only=True)
class TrackEvent(Event):
    """An event about one track. Its fields are keyword-only, after the subclass's own.

    Attributes:
        subject: The subclass's fields that say what happened (the line and direction): a record lists
            them, then the track, then the subclass's other fields, then the speed.
        track_id: The tracker's ID.
        class_name: The track's majority class.
        class_group: The class's group (``class_groups``), once the analytics stage has tagged it.
        speed_kmh: The track's smoothed speed, if speed calibration is configured and plausible.

    Example:
        >>> ZoneExit(5, 2.0, "yard", 1.5, track_id=8, class_name="truck").to_record()  # doctest: +NORMALIZE_WHITESPACE
        {'event': 'zone_exit', 'frame_index': 5, 'timestamp_s': 2.0, 'zone': 'yard', 'track_id': 8,
         'class_name': 'truck', 'class_group': None, 'dwell_s': 1.5, 'speed_kmh': None}
    """

    subject: ClassVar[tuple[str, ...]] = ()
    track_id: int
    class_name: str
    class_group: str | None = None
    speed_kmh: float | None = None

    def to_record(self) -> dict[str, Any]:
        record = super().to_record()
        head = ["event", "frame_index", "timestamp_s", *self.subject, "track_id", "class_name", "class_group"]
        ordered = {key: record.pop(key) for key in head}
        speed_kmh = record.pop("speed_kmh")
        return {**ordered, **record, "speed_kmh": speed_kmh}


@dataclass(frozen=True)
class LineCrossing(TrackEvent):
    """A track's anchor crossed a counting line.

    Attributes:
        line: The line's name.
        direction: ``in`` (negative to positive side of cross(end - start, anchor - start)) or ``out``.
        lane: The lane (sub-segment of the line) it crossed, if the line has lanes.
        crossed_s: When the anchor crossed the line, interpolated between the sightings either side
            of it. The event's own frame and timestamp are when the crossing was confirmed (the
            anchor ``min_crossing_distance`` beyond the line), a frame or more later, and after a
            gap in the track, the whole gap later.
    """

    event_type: ClassVar[str] = "line_crossing"
    subject: ClassVar[tuple[str, ...]] = ("line", "direction")
    line: str
    direction: Direction
    lane: str | None = None
    crossed_s: float | None = None


@dataclass(frozen=True)
class ZoneEnter(TrackEvent):
    """A track's anchor entered a zone."""

    event_type: ClassVar[str] = "zone_enter"
    subject: ClassVar[tuple[str, ...]] = ("zone",)
    zone: str


@dataclass(frozen=True)
class ZoneExit(TrackEvent):
    """A track left a zone (or vanished from it for longer than the tracker's buffer; then the
    event's frame and timestamp are those of its last sighting inside).

    Attributes:
        dwell_s: Time from entering to leaving, from the video timestamps.
    """

    event_type: ClassVar[str] = "zone_exit"
    subject: ClassVar[tuple[str, ...]] = ("zone",)
    zone: str
    dwell_s: float


@dataclass(frozen=True)
class SlotChange(Event):
    """A parking slot's debounced state changed; the time is when the change began."""

    event_type: ClassVar[str] = "slot_change"
    slot: str
    occupied: bool

    def to_record(self) -> dict[str, Any]:
        return {**super().to_record(), "event": "slot_occupied" if self.occupied else "slot_free"}


@dataclass(frozen=True)
class Movement(TrackEvent):
    """A track went from one approach to another (or back to the same: a U-turn).

    The event's frame and timestamp are when the track reached its destination; for a track that
    left its origin and vanished before reaching any exit (``destination`` None), its last sighting.

    Attributes:
        movement: ``origin->destination``, ``origin->?`` if it reached no exit.
        origin: The first approach the track was seen in.
        destination: The approach it reached; None if it reached none.
        origin_frame: The frame it was first seen in its origin on.
        origin_s: When it was first seen in its origin.
        travel_s: From ``origin_s`` to this event.
        inferred: Whether an end rests on the track's path rather than a sighting: its origin (or the
            vanished track it continues) from where it came from, or its destination from where it
            was heading when lost.
        turn: ``left``, ``through``, ``right`` or ``u_turn``, from the approaches' geometry
            (:func:`~pipeline.analytics.turns.turn_of`); None without a destination.
        entered_s: When it entered the intersection from its origin (crossed the origin's gate inbound,
            interpolated, or was first seen out of its polygon): the time a TMC counts it at
            (:func:`happened_s`). None in the records of older runs.
    """

    event_type: ClassVar[str] = "movement"
    subject: ClassVar[tuple[str, ...]] = ("movement", "origin", "destination")
    movement: str
    origin: str
    destination: str | None
    origin_frame: int
    origin_s: float
    travel_s: float
    inferred: bool = False
    turn: str | None = None
    entered_s: float | None = None


@dataclass(frozen=True)
class CrosswalkCrossing(TrackEvent):
    """A pedestrian crossed a crosswalk.

    The event's frame and timestamp are when the crossing was confirmed: across a line, the anchor
    ``min_crossing_distance`` beyond it; in a polygon, when the pedestrian left it or, lost inside,
    was forgotten (then its last sighting's), seconds later.

    Attributes:
        crosswalk: The crosswalk's name.
        direction: ``in``/``out`` across a crosswalk's line (as on a counting line); None for a polygon.
        crossed_s: When it crossed: when the anchor was on the line, or when its walk inside the polygon
            reached the share that counts (:data:`~pipeline.analytics.crosswalks.WALK_SHARE` of its
            length), each interpolated between the sightings either side; the time it is binned at
            (:func:`happened_s`). None in the records of older runs.
    """

    event_type: ClassVar[str] = "crosswalk_crossing"
    subject: ClassVar[tuple[str, ...]] = ("crosswalk", "direction")
    crosswalk: str
    direction: Direction | None = None
    crossed_s: float | None = None


TRACK_EVENTS: dict[str, type[TrackEvent]] = {
    kind.event_type: kind for kind in (LineCrossing, ZoneEnter, ZoneExit, Movement, CrosswalkCrossing)
}
"""The track events by their records' ``event``."""


def event_from_record(record: Mapping[str, Any]) -> Event | None:
    """The event an ``events.jsonl`` record was written from (None: a record of no counter's, such as a
    connection event); fields the event has not (``seq``, ``run_id``, ``time_utc``) are left out.

    Example:
        >>> record = LineCrossing(5, 0.2, "main", "in", track_id=3, class_name="car").to_record()
        >>> event_from_record({**record, "seq": 9}) == LineCrossing(5, 0.2, "main", "in", track_id=3, class_name="car")
        True
        >>> event_from_record({"event": "slot_free", "frame_index": 8, "timestamp_s": 0.3, "slot": "A1"})
        SlotChange(frame_index=8, timestamp_s=0.3, slot='A1', occupied=False)
    """
    kind = record.get("event")
    if kind in ("slot_occupied", "slot_free"):
        return SlotChange(record["frame_index"], record["timestamp_s"], record["slot"], kind == "slot_occupied")
    event_class = TRACK_EVENTS.get(kind or "")
    if event_class is None:
        return None
    names = {field.name for field in fields(event_class)}
    return event_class(**{key: value for key, value in record.items() if key in names})


HAPPENED_FIELDS = ("crossed_s", "entered_s")
"""The fields that say when an event happened, where it has one: a line or crosswalk crossing's
``crossed_s``, a movement's ``entered_s``. The event's own ``timestamp_s`` is when it was confirmed, later."""


def happened_s(event: Event | Mapping[str, Any]) -> float | None:
    """When ``event`` (or its record) happened, the time it is binned at (intervals, the store, the TMC):
    its :data:`HAPPENED_FIELDS` value, else its ``timestamp_s`` (None for a record without one).

    Example:
        >>> crossing = LineCrossing(30, 900.1, "main", "in", crossed_s=899.95, track_id=3, class_name="car")
        >>> happened_s(crossing), happened_s(crossing.to_record()), happened_s({"timestamp_s": 2.0})
        (899.95, 899.95, 2.0)
    """
    record = event if isinstance(event, Mapping) else vars(event)
    for key in (*HAPPENED_FIELDS, "timestamp_s"):
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def events_of(records: Iterable[Mapping[str, Any]]) -> Iterator[Event]:
    """The events ``records`` were written from, one at a time (see :func:`event_from_record`; the others
    left out)."""
    return (event for record in records if (event := event_from_record(record)) is not None)
