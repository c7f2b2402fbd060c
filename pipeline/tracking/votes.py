"""Per-track class votes: a track keeps the class it was most often detected as."""

from __future__ import annotations

from collections import Counter


class TrackClassVote:
    """Gives each track the class it was most often detected as over its life so far.

    A car misread as a truck for two frames stays a car, so per-class counts do not flicker.
    Votes of tracks unseen for more than ``forget_after_frames`` are dropped.

    Example:
        >>> vote = TrackClassVote(forget_after_frames=30)
        >>> [vote.update([7], [2])[0] for _ in range(3)] + vote.update([7], [7])
        [2, 2, 2, 2]
    """

    def __init__(self, forget_after_frames: int) -> None:
        self.forget_after_frames = forget_after_frames
        self._votes: dict[int, Counter[int]] = {}
        self._last_seen: dict[int, int] = {}
        self._frame = 0

    @property
    def tracks_held(self) -> int:
        return len(self._votes)

    def majority(self, track_id: int) -> int:
        """The track's majority class so far (without adding a vote)."""
        return self._votes[track_id].most_common(1)[0][0]

    def update(self, track_ids: list[int], class_ids: list[int]) -> list[int]:
        """Add one frame's votes; returns the majority class of each given track."""
        self._frame += 1
        majority = []
        for track_id, class_id in zip(track_ids, class_ids, strict=True):
            votes = self._votes.setdefault(track_id, Counter())
            votes[class_id] += 1
            self._last_seen[track_id] = self._frame
            majority.append(votes.most_common(1)[0][0])
        for track_id in [t for t, seen in self._last_seen.items() if self._frame - seen > self.forget_after_frames]:
            del self._votes[track_id], self._last_seen[track_id]
        return majority
