"""Events emitted by the analytics stage and written, one JSON object each, to ``events.jsonl``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class LineCrossing:
    """A track's anchor crossed a counting line.

    Attributes:
        frame_index: Frame on which the anchor was first seen on the far side.
        timestamp_s: That frame's timestamp.
        line: The line's name.
        direction: ``in`` (negative to positive side of cross(end - start, anchor - start)) or ``out``.
        track_id: The tracker's ID.
        class_name: The track's class on that frame.
    """

    frame_index: int
    timestamp_s: float
    line: str
    direction: Direction
    track_id: int
    class_name: str

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready form, tagged with its event type."""
        return {"event": "line_crossing", **asdict(self), "timestamp_s": round(self.timestamp_s, 4)}
