"""One source's records, with its camera's name, fanned out to its configured sinks (and counted in the metrics)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.config.columns import zone_column
from pipeline.io.live.metrics import RunMetrics
from pipeline.io.outputs.records import RecordStamp, new_run_id
from pipeline.io.publish.mqtt import MqttSink, read_credentials
from pipeline.io.publish.webhook import WebhookSink, check_webhook_url


class Publisher:
    """Fans one source's records out to its configured sinks, with the camera's name.

    Args:
        config: The run config (its ``publish`` section).
        camera: The source's name (``publish.camera`` overrides it).
        out_dir: The run folder (the webhook's queue goes in ``publish/``).
        metrics: Prometheus metrics to count the same records in (``--serve``'s ``/metrics``).
        stamp: Stamps the ``counts`` records (the events come stamped).
    """

    def __init__(
        self,
        config: Config,
        camera: str,
        out_dir: Path,
        metrics: RunMetrics | None = None,
        stamp: RecordStamp | None = None,
    ) -> None:
        publish = config.publish
        self.camera = publish.camera or camera
        self.counts_every_s = publish.counts_every_s
        self.sinks: list[Any] = []
        self.metrics = metrics
        self.stamp = stamp or RecordStamp(new_run_id())
        self._counts_due_s = 0.0
        self._parking_state: tuple[int, int] | None = None  # (free, occupied) last retained
        self._zone_columns = {zone.name: zone_column(zone.name) for zone in config.zones}  # the metrics' gauges
        if publish.mqtt.host:
            self.sinks.append(MqttSink(publish.mqtt, self.camera, read_credentials(publish.mqtt, config.origin)))
        if publish.webhook.url:
            self.sinks.append(WebhookSink(publish.webhook, out_dir / "publish" / "webhook.queue"))

    @staticmethod
    def check(config: Config) -> None:
        """Raise a :class:`ConfigError` for what only shows at run time (credentials, a webhook URL that
        urllib cannot split), before anything runs."""
        if config.publish.mqtt.host:
            read_credentials(config.publish.mqtt, config.origin)
        if config.publish.webhook.url:
            check_webhook_url(config.publish.webhook.url, config.origin)

    @staticmethod
    def check_sources(config: Config, sources: int) -> None:
        """Raise a :class:`ConfigError` for a setting that names one camera in a run of ``sources``
        sources: every camera would publish, and be stored, under that one name (``publish.camera``),
        or connect as that one MQTT client, which the broker disconnects whenever another connects
        with its id (``publish.mqtt.client_id``)."""
        if sources < 2:
            return
        if config.publish.camera:
            raise config.error(
                "publish.camera",
                f"names one camera, and this run has {sources} sources: leave it out, so each "
                "publishes and is stored under its own source name",
            )
        if config.publish.mqtt.host and config.publish.mqtt.client_id:
            raise config.error(
                "publish.mqtt.client_id",
                f"is one MQTT connection, and this run has {sources} sources (the broker "
                "drops a client when another connects with its id): leave it out, so each uses vpipe-<camera>",
            )

    def publish(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Send records (events as in ``events.jsonl``: stamped and numbered)."""
        for record in records:
            message = {"camera": self.camera, **record}
            if self.metrics is not None:
                self.metrics.record(self.camera, record)
            for sink in self.sinks:
                sink.send(message)

    def counts(self, row: Mapping[str, Any], timestamp_s: float) -> None:
        """Called once per frame: sends the current counts (a ``counts.csv`` row) every ``counts_every_s``
        of video, and a lot's free bays (its ``slots_free``) as retained MQTT state when they change."""
        if self.metrics is not None:
            zones = {zone: row[column] for zone, column in self._zone_columns.items() if column in row}
            self.metrics.frame(self.camera, zones)
        if not self.sinks:
            return
        if "slots_free" in row:
            self._parking(int(row["slots_free"]), int(row["slots_occupied"]), timestamp_s)
        if timestamp_s >= self._counts_due_s:
            self._counts_due_s = timestamp_s + self.counts_every_s
            self.publish([self.stamp.note({"event": "counts", **row})])

    def _parking(self, free: int, occupied: int, timestamp_s: float) -> None:
        """The lot's free bays as retained MQTT state (``<prefix>/<camera>/parking/free``), whenever they change."""
        if (free, occupied) == self._parking_state:
            return
        self._parking_state = (free, occupied)
        state = {"camera": self.camera, "free": free, "occupied": occupied, "slots": free + occupied}
        message = self.stamp.note(state | {"timestamp_s": round(timestamp_s, 3)})
        for sink in self.sinks:
            if isinstance(sink, MqttSink):
                sink.retain("parking/free", message)

    def close(self, drain_s: float = 10.0) -> None:
        """Give each sink up to ``drain_s`` to deliver what it holds, then stop it."""
        for sink in self.sinks:
            sink.close(drain_s)

    def summary(self) -> dict[str, dict[str, int]]:
        """The ``publish`` section of ``summary.json``: each configured sink's counts so far."""
        return {sink.name: sink.summary() for sink in self.sinks}
