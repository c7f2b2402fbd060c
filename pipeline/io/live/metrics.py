"""Prometheus metrics of a run, served at ``/metrics`` by ``--serve``.

Fed the same records as the event streams (see :mod:`pipeline.io.publish`), so the counters equal
``events.jsonl`` and the summary. Each :class:`RunMetrics` has its own registry: nothing global.

Example:
    >>> metrics = RunMetrics()
    >>> metrics.record("cam", {"event": "line_crossing", "line": "main", "direction": "in", "class_name": "car"})
    >>> metrics.frame("cam")
    >>> b'vpipe_line_crossings_total{camera="cam",class_name="car",direction="in",line="main"} 1.0' in metrics.text()
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "RunMetrics"]


class RunMetrics:
    """Counters per camera: crossings per line, direction and class; movements per class; zone
    enters; frames processed (``rate()`` of it is the processing fps); stream disconnects and
    reconnects; frames dropped; and the objects in each zone on the last frame."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("camera", "line", "direction", "class_name")
        self._crossings = Counter("vpipe_line_crossings", "Line crossings.", labels, registry=self.registry)
        self._movements = Counter(
            "vpipe_movements", "Turning movements.", ("camera", "movement", "class_name"), registry=self.registry
        )
        self._zone_enters = Counter(
            "vpipe_zone_enters", "Tracks entering a zone.", ("camera", "zone", "class_name"), registry=self.registry
        )
        self._frames = Counter("vpipe_frames_processed", "Frames processed.", ("camera",), registry=self.registry)
        self._stream = Counter(
            "vpipe_stream_events", "Source disconnects and reconnects.", ("camera", "event"), registry=self.registry
        )
        self._dropped = Gauge(
            "vpipe_frames_dropped",
            "Frames a live source dropped to stay real time.",
            ("camera",),
            registry=self.registry,
        )
        self._zone_objects = Gauge(
            "vpipe_zone_objects", "Objects inside a zone on the last frame.", ("camera", "zone"), registry=self.registry
        )

    def record(self, camera: str, record: Mapping[str, Any]) -> None:
        """Count one event record (as in ``events.jsonl``) or a ``counts`` record."""
        kind = record.get("event")
        if kind == "line_crossing":
            self._crossings.labels(camera, record["line"], record["direction"], record["class_name"]).inc()
        elif kind == "movement":
            self._movements.labels(camera, record["movement"], record["class_name"]).inc()
        elif kind == "zone_enter":
            self._zone_enters.labels(camera, record["zone"], record["class_name"]).inc()
        elif kind in ("stream_disconnected", "stream_reconnected"):
            self._stream.labels(camera, kind.removeprefix("stream_")).inc()

    def frame(self, camera: str, zones: Mapping[str, int] | None = None) -> None:
        """Count one processed frame; ``zones`` (the objects in each zone on it) sets the zone gauges."""
        self._frames.labels(camera).inc()
        for zone, objects in (zones or {}).items():
            self._zone_objects.labels(camera, zone).set(objects)

    def dropped(self, camera: str, frames: int) -> None:
        """Frames ``camera`` has dropped so far (the latest-frame policy keeps a live feed real time)."""
        self._dropped.labels(camera).set(frames)

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
