"""A track lost by the tracker and found again under a new ID: which vanished track a new one continues.

Trackers lose a vehicle for a few frames in the middle of an intersection (an occlusion, a second
detection of the same vehicle that grows into its own track) and find it again under a new ID.
A new ID continues a vanished track when its anchor lies within the vanished track's box, centred
on where the vanished track's anchor would be now had it kept its recent velocity:
``|dx| <= width / 2`` and ``|dy| <= height / 2``. The velocity is the anchor's displacement over the
last ``window_s`` of sightings, so one bad box moves it by a fraction. Each vanished track continues
into one new track at most and each new track continues one vanished track at most, closest pairs
first (distance in half box sizes).

Example:
    >>> trail = MotionTrail()
    >>> for frame_index in range(5):  # 10 px per frame to the right at 10 fps, a 40x20 box
    ...     trail.add(frame_index / 10, (100.0 + 10 * frame_index, 50.0), (40.0, 20.0))
    >>> trail.predict(0.6)  # two frames after the last sighting, at x=140
    (160.0, 50.0)
    >>> continuations({7: (165.0, 52.0), 8: (300.0, 50.0)}, {3: trail}, 0.6)
    {7: 3}
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from pipeline.geometry import Point


class MotionTrail:
    """A track's recent anchors and last box size.

    Args:
        window_s: The span of sightings the velocity is measured over.
    """

    def __init__(self, window_s: float = 0.5) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float, float]] = deque()
        """(time, x, y) of the anchor, the last ``window_s`` plus the one just before it."""
        self.size_px: tuple[float, float] = (0.0, 0.0)
        """Width and height of the last box."""

    def add(self, now_s: float, anchor: Point, size_px: tuple[float, float]) -> None:
        """Record a sighting."""
        self._samples.append((now_s, anchor[0], anchor[1]))
        while len(self._samples) > 2 and now_s - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        self.size_px = size_px

    @property
    def first(self) -> Point:
        """The oldest anchor held (the window's start)."""
        return (self._samples[0][1], self._samples[0][2])

    @property
    def last(self) -> Point:
        """The latest anchor."""
        return (self._samples[-1][1], self._samples[-1][2])

    def predict(self, now_s: float) -> Point:
        """Where the anchor would be at ``now_s``, moving on at its velocity over the window."""
        t1, x1, y1 = self._samples[-1]
        t0, x0, y0 = self._samples[0]
        if t1 <= t0:
            return (x1, y1)
        scale = (now_s - t1) / (t1 - t0)
        return (x1 + (x1 - x0) * scale, y1 + (y1 - y0) * scale)

    def distance(self, anchor: Point, now_s: float) -> float:
        """How far ``anchor`` is from the prediction, in half box sizes per axis (the larger of the
        two); the anchor is inside the gate at 1 or less."""
        x, y = self.predict(now_s)
        half_w, half_h = max(self.size_px[0], 1.0) / 2, max(self.size_px[1], 1.0) / 2
        return max(abs(anchor[0] - x) / half_w, abs(anchor[1] - y) / half_h)


def continuations(new: Mapping[int, Point], vanished: Mapping[int, MotionTrail], now_s: float) -> dict[int, int]:
    """New track ID to the vanished track ID it continues, for the pairs inside the gate."""
    pairs = sorted(
        (trail.distance(anchor, now_s), new_id, old_id)
        for new_id, anchor in new.items()
        for old_id, trail in vanished.items()
    )
    chosen: dict[int, int] = {}
    for distance, new_id, old_id in pairs:
        if distance <= 1.0 and new_id not in chosen and old_id not in chosen.values():
            chosen[new_id] = old_id
    return chosen
