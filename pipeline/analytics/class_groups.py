"""Class groups of a turning-movement count: which group (cars, trucks, pedestrians, ...) a model class is
in, and what kind of road user that group is (a light or heavy vehicle, a bicycle, a pedestrian).

Example:
    >>> walkers = ClassGroupConfig("walkers", ["person"], "pedestrian")
    >>> groups = ClassGroups.of_config([ClassGroupConfig("cars", ["car"]), walkers])
    >>> groups.group("car"), groups.group("kite"), groups.is_pedestrian("person"), groups.names
    ('cars', 'other', True, ['cars', 'walkers', 'other'])
    >>> groups.regroup({"car": 2, "kite": 1, "truck": 1})
    {'cars': 2, 'other': 2}
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import supervision as sv

from pipeline.analytics.events import Event, TrackEvent
from pipeline.config.columns import OTHER
from pipeline.config.sections import ClassGroupConfig, GroupKind, default_class_groups


class ClassGroups:
    """Model class -> TMC group, and each group's kind.

    Args:
        groups: Group name to (its classes, its kind), in report order.
    """

    def __init__(self, groups: Mapping[str, tuple[Sequence[str], GroupKind]]) -> None:
        self._group = {class_name: name for name, (classes, _) in groups.items() for class_name in classes}
        self.kinds: dict[str, GroupKind] = {name: kind for name, (_, kind) in groups.items()}
        self.kinds.setdefault(OTHER, "vehicle")

    @classmethod
    def of_config(cls, groups: Sequence[ClassGroupConfig] | None = None) -> ClassGroups:
        """The groups of ``class_groups`` (the defaults when None)."""
        configured = default_class_groups() if groups is None else groups
        return cls({group.name: (group.classes, group.kind) for group in configured})

    @property
    def names(self) -> list[str]:
        """Every group, in config order, then :data:`OTHER`."""
        return list(self.kinds)

    def group(self, class_name: str) -> str:
        """The group ``class_name`` is in (:data:`OTHER` for one no group lists)."""
        return self._group.get(class_name, OTHER)

    def kind(self, class_name: str) -> GroupKind:
        """What a track of ``class_name`` is: ``vehicle``, ``heavy``, ``bicycle`` or ``pedestrian``."""
        return self.kinds[self.group(class_name)]

    def is_pedestrian(self, class_name: str) -> bool:
        return self.kind(class_name) == "pedestrian"

    def pedestrians(self, detections: sv.Detections) -> np.ndarray:
        """Which of ``detections`` (with ``class_name`` data) are pedestrians, as a boolean mask."""
        names = detections.data.get("class_name")
        if names is None or len(detections) == 0:
            return np.zeros(len(detections), dtype=bool)
        return np.array([self.is_pedestrian(str(name)) for name in names], dtype=bool)

    def tag(self, event: Event) -> Event:
        """``event`` with its track's group (other events as they are)."""
        if not isinstance(event, TrackEvent):
            return event
        return dataclasses.replace(event, class_group=self.group(event.class_name))

    def regroup(self, by_class: Mapping[str, int]) -> dict[str, int]:
        """Counts per class added up per group, in :attr:`names` order (groups with none left out)."""
        totals: Counter[str] = Counter()
        for class_name, count in by_class.items():
            totals[self.group(class_name)] += count
        return {name: totals[name] for name in self.names if totals[name]}
