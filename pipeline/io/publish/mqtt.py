"""MQTT: every record published with QoS 1 through paho-mqtt, credentials never shown."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.config import MqttConfig
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)


def read_credentials(config: MqttConfig, origin: str) -> tuple[str | None, str | None]:
    """(username, password) from the environment or ``credentials_file`` (``user:password``).

    Raises:
        ConfigError: A named variable is unset or the file is unreadable (the secret is never shown).
    """
    username = password = None
    if config.credentials_file:
        try:
            text = Path(config.credentials_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{origin}: publish.mqtt.credentials_file: cannot read it ({exc.strerror})") from None
        username, _, password = text.partition(":")
    for key, name in (("username_env", config.username_env), ("password_env", config.password_env)):
        if name is None:
            continue
        if name not in os.environ:
            raise ConfigError(f"{origin}: publish.mqtt.{key}: environment variable {name} is not set")
        if key == "username_env":
            username = os.environ[name]
        else:
            password = os.environ[name]
    return username, password


class MqttSink:
    """Publishes records with QoS 1 through paho-mqtt's network thread, which reconnects with backoff
    (1 s, then every 2 s) and sends the messages queued meanwhile; the broker keeps the session.

    Args:
        config: The ``publish.mqtt`` section.
        camera: The camera's name in the topics.
        credentials: (username, password) or Nones.
    """

    name = "mqtt"

    def __init__(self, config: MqttConfig, camera: str, credentials: tuple[str | None, str | None]) -> None:
        import paho.mqtt.client as mqtt

        assert config.host is not None
        self.where = f"{config.host}:{config.port}"
        self.prefix = f"{config.topic_prefix}/{camera}"
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id or f"vpipe-{camera}", clean_session=False
        )
        username, password = credentials
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.max_queued_messages_set(0)  # unbounded in paho; bounded by the run's event rate
        # A short cap: a broker back during the end-of-run drain (10 s) must be seen within it; a refused
        # connect to a broker that is down costs nothing.
        self._client.reconnect_delay_set(1, 2)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail  # a connect that fails before MQTT (refused)
        self._client.on_disconnect = self._on_disconnect
        self._connected_once = False
        self._down = False
        self._closing = False
        self.published = self.acknowledged = 0
        # Message ids sent and not yet acknowledged, and acknowledgements that came before their
        # send() returned: paho's own wait raises for a message queued while disconnected.
        self._unacked: set[int] = set()
        self._early_acks: set[int] = set()
        self._lock = threading.Lock()
        self._client.on_publish = self._on_publish
        self._client.connect_async(config.host, config.port, keepalive=30)
        self._client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._warn(f"refused ({reason})")
            return
        if self._down:
            log.warning("mqtt %s: connected again", self.where)
        self._down, self._connected_once = False, True

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        self._warn("cannot connect")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self._closing:  # our own disconnect at the end of the run
            return
        self._warn("disconnected" if self._connected_once else f"cannot connect ({reason})")

    def _warn(self, what: str) -> None:
        if not self._down:
            log.warning("mqtt %s: %s; queueing messages, reconnecting", self.where, what)
            self._down = True

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            self.acknowledged += 1
            if mid in self._unacked:
                self._unacked.remove(mid)
            else:
                self._early_acks.add(mid)

    def send(self, record: Mapping[str, Any]) -> None:
        kind = record.get("event", "counts")
        self._publish(f"{self.prefix}/counts" if kind == "counts" else f"{self.prefix}/events/{kind}", record)

    def retain(self, tail: str, document: Mapping[str, Any]) -> None:
        """Publish ``document`` as the retained state of ``<prefix>/<camera>/<tail>``: the broker keeps
        the latest and gives it to every subscriber as it subscribes, however late."""
        self._publish(f"{self.prefix}/{tail}", document, retain=True)

    def _publish(self, topic: str, document: Mapping[str, Any], retain: bool = False) -> None:
        payload = json.dumps(document, separators=(",", ":"))
        mid = self._client.publish(topic, payload, qos=1, retain=retain).mid
        self.published += 1
        with self._lock:  # never held while calling paho: its network thread calls _on_publish
            if mid in self._early_acks:
                self._early_acks.remove(mid)
            else:
                self._unacked.add(mid)

    def close(self, drain_s: float) -> None:
        """Wait up to ``drain_s`` for the broker to acknowledge every message, then disconnect."""
        deadline = time.monotonic() + drain_s
        while self._unacked and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._unacked:
            log.warning(
                "mqtt %s: %d of %d messages not acknowledged by the broker at the end of the run",
                self.where,
                len(self._unacked),
                self.published,
            )
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()

    def summary(self) -> dict[str, int]:
        """Messages published, acknowledged by the broker (QoS 1), and not (yet) acknowledged."""
        return {
            "published": self.published,
            "acknowledged": self.acknowledged,
            "unacknowledged": self.published - self.acknowledged,
        }
