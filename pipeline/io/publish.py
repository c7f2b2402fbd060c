"""Live event streams: every event of ``events.jsonl`` and periodic counts, to MQTT and webhooks.

Each record gets the camera's name and a sequence number (``seq``, from 1 per run), so a receiver can
tell a retry it already has. Sinks never block the run: MQTT publishing is paho's network thread
(QoS 1, messages kept while the broker is away), webhooks a background thread that POSTs from a
bounded queue on disk. An unreachable sink gets one warning line when it goes away and one when it
comes back; the run's files are written whatever happens to the sinks. Each sink counts what it sent,
for the ``publish`` section of ``summary.json``.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.concurrency import Backoff
from pipeline.config import Config, MqttConfig, WebhookConfig
from pipeline.errors import ConfigError
from pipeline.io.metrics import RunMetrics
from pipeline.io.urls import mask_credentials

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


class DiskQueue:
    """A FIFO of JSON records in one append-only file, consumed from an offset; the file is
    emptied whenever the consumer has caught up, and holds at most ``max_bytes``.

    Example:
        >>> import tempfile
        >>> queue = DiskQueue(Path(tempfile.mkdtemp()) / "q.jsonl", max_bytes=1000)
        >>> queue.put({"a": 1}); queue.put({"a": 2})
        True
        True
        >>> queue.peek(), queue.pop(), queue.peek(), queue.pop(), queue.peek()
        ({'a': 1}, None, {'a': 2}, None, None)
        >>> queue.put({"a": 3}), queue.put({"a": 4})
        (True, True)
        >>> queue.pop(); queue.close()  # what is left on close is what was not delivered
        >>> queue.path.read_text()
        '{"a":4}\\n'
    """

    def __init__(self, path: Path, max_bytes: float) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.dropped = 0
        self._lock = threading.Lock()
        self._offset = 0
        self._size = 0
        self._count = 0
        self._file: Any = None

    def put(self, record: Mapping[str, Any]) -> bool:
        """Append ``record``; False (and counted as dropped) if the queue is full."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._size - self._offset + len(line) > self.max_bytes:
                self.dropped += 1
                return False
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("w+b")
            self._file.seek(self._size)
            self._file.write(line)
            self._file.flush()
            self._size += len(line)
            self._count += 1
        return True

    def peek(self) -> dict[str, Any] | None:
        """The oldest record not yet popped, or None."""
        with self._lock:
            if self._file is None or self._offset >= self._size:
                return None
            self._file.seek(self._offset)
            return json.loads(self._file.readline())

    def pop(self) -> None:
        """Drop the oldest record (it was delivered)."""
        with self._lock:
            self._file.seek(self._offset)
            self._offset += len(self._file.readline())
            self._count -= 1
            if self._offset >= self._size:  # caught up: start the file again
                self._file.truncate(0)
                self._offset = self._size = 0

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Close the file, leaving in it only the records not yet popped."""
        with self._lock:
            if self._file is None:
                return
            if self._offset:
                self._file.seek(self._offset)
                left = self._file.read()
                self._file.seek(0)
                self._file.write(left)
                self._file.truncate(len(left))
            self._file.close()
            self._file = None


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Makes every 3xx an :class:`urllib.error.HTTPError`: urllib would follow a POST's redirect as a
    bodiless GET, to any host, and count the record delivered on that GET's 2xx."""

    def redirect_request(self, *args: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_RefuseRedirects)


def split_user_info(url: str) -> tuple[str, str | None]:
    """``url`` without its user info, and that user info as an HTTP Basic ``Authorization`` value.

    The user info ends at the host part's last ``@``, as urllib splits it: a ``/``, ``?`` or ``#`` in
    the password must be percent-encoded. User and password are percent-decoded.

    Example:
        >>> split_user_info("https://vpipe:p@ss%2Fw@example.org:8443/hook?x=1")
        ('https://example.org:8443/hook?x=1', 'Basic dnBpcGU6cEBzcy93')
        >>> split_user_info("http://example.org/hook")
        ('http://example.org/hook', None)
    """
    parts = urllib.parse.urlsplit(url)
    user_info, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = user_info.partition(":")
    token = base64.b64encode(f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()).decode()
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), f"Basic {token}"


def check_webhook_url(url: str, origin: str) -> None:
    """Raise a :class:`ConfigError` if ``url`` has no host or a port that is not a number (a password's
    ``/ ? #`` not percent-encoded ends the host part early); the password is never shown."""
    parts = urllib.parse.urlsplit(split_user_info(url)[0])
    try:
        valid = bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(
            f"{origin}: publish.webhook.url: {mask_credentials(url)} has no valid host and port "
            "(percent-encode / ? # in a password: %2F %3F %23)"
        )


def _failure(exc: Exception) -> str:
    """What went wrong with one POST, for the warning; a redirect names where it pointed, last: a
    query value that :func:`mask_credentials` masks runs to the next ``;``, ``&``, ``#`` or space."""
    if not isinstance(exc, urllib.error.HTTPError):
        return mask_credentials(str(getattr(exc, "reason", None) or exc))
    exc.close()
    location = exc.headers.get("Location")
    if 300 <= exc.code < 400 and location:
        return f"HTTP {exc.code} {exc.reason}, not following its redirect to {mask_credentials(location)}"
    return f"HTTP {exc.code} {exc.reason}"


class WebhookSink:
    """POSTs records one at a time, in order, from a :class:`DiskQueue`, on its own thread; a
    failure (no connection, timeout, non-2xx, a redirect: never followed) is retried with backoff (0.5 s
    doubling up to 30 s). User info in the URL is sent as HTTP Basic authorization.

    Args:
        config: The ``publish.webhook`` section.
        queue_path: The queue's file.
    """

    name = "webhook"

    def __init__(self, config: WebhookConfig, queue_path: Path) -> None:
        assert config.url is not None
        self.shown = mask_credentials(config.url)
        self.url, authorization = split_user_info(config.url)
        self.headers = {"Content-Type": "application/json"}
        if authorization is not None:
            self.headers["Authorization"] = authorization
        self.timeout_s = config.timeout_s
        self.queue = DiskQueue(queue_path, config.max_queue_mb * 1e6)
        self.delivered = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    def send(self, record: Mapping[str, Any]) -> None:
        if not self.queue.put(record) and self.queue.dropped == 1:
            log.warning("webhook %s: queue full, dropping new events", self.shown)
        self._wake.set()

    def _post(self, record: Mapping[str, Any]) -> None:
        body = json.dumps(record, separators=(",", ":")).encode()
        request = urllib.request.Request(self.url, body, self.headers, method="POST")
        with _OPENER.open(request, timeout=self.timeout_s) as response:
            response.read()

    def _run(self) -> None:
        backoff, failures = Backoff(), 0
        while True:
            record = self.queue.peek()
            if record is None:
                if self._stop.is_set():
                    return
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            try:
                self._post(record)
            except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError is an OSError
                if not failures:
                    log.warning("webhook %s: cannot deliver: %s; retrying", self.shown, _failure(exc))
                failures += 1
                if self._stop.wait(backoff.wait_s(failures)):
                    return
                continue
            if failures:
                log.warning("webhook %s: delivering again", self.shown)
                failures = 0
            self.queue.pop()
            self.delivered += 1

    def close(self, drain_s: float) -> None:
        """Deliver what is queued for up to ``drain_s``, then stop; the rest stays in the queue file."""
        deadline = time.monotonic() + drain_s
        while len(self.queue) and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.timeout_s + 1)
        lost = []
        if len(self.queue):
            lost.append(f"{len(self.queue)} records not delivered, kept in {self.queue.path}")
        if self.queue.dropped:
            lost.append(f"{self.queue.dropped} dropped when the queue was full")
        if lost:
            log.warning("webhook %s: %s", self.shown, "; ".join(lost))
        self.queue.close()

    def summary(self) -> dict[str, int]:
        """Records delivered, waiting in the queue file (at the end: not delivered), and dropped because
        the queue was full."""
        return {"delivered": self.delivered, "queued": len(self.queue), "dropped": self.queue.dropped}


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
        topic = f"{self.prefix}/counts" if kind == "counts" else f"{self.prefix}/events/{kind}"
        mid = self._client.publish(topic, json.dumps(record, separators=(",", ":")), qos=1).mid
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


class Publisher:
    """Fans one source's records out to its configured sinks, numbering them.

    Args:
        config: The run config (its ``publish`` section).
        camera: The source's name (``publish.camera`` overrides it).
        out_dir: The run folder (the webhook's queue goes in ``publish/``).
        metrics: Prometheus metrics to count the same records in (``--serve``'s ``/metrics``).
    """

    def __init__(self, config: Config, camera: str, out_dir: Path, metrics: RunMetrics | None = None) -> None:
        publish = config.publish
        self.camera = publish.camera or camera
        self.counts_every_s = publish.counts_every_s
        self.sinks: list[Any] = []
        self.metrics = metrics
        self._seq = 0
        self._counts_due_s = 0.0
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

    def publish(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Send events (as in ``events.jsonl``)."""
        for record in records:
            self._seq += 1
            message = {"camera": self.camera, "seq": self._seq, **record}
            if self.metrics is not None:
                self.metrics.record(self.camera, record)
            for sink in self.sinks:
                sink.send(message)

    def counts(self, row: Mapping[str, Any], timestamp_s: float) -> None:
        """Called once per frame: sends the current counts (a ``counts.csv`` row) every ``counts_every_s``
        of video."""
        if self.metrics is not None:
            self.metrics.frame(self.camera, row)
        if not self.sinks:
            return
        if timestamp_s >= self._counts_due_s:
            self._counts_due_s = timestamp_s + self.counts_every_s
            self.publish([{"event": "counts", **row}])

    def close(self, drain_s: float = 10.0) -> None:
        """Give each sink up to ``drain_s`` to deliver what it holds, then stop it."""
        for sink in self.sinks:
            sink.close(drain_s)

    def summary(self) -> dict[str, dict[str, int]]:
        """The ``publish`` section of ``summary.json``: each configured sink's counts so far."""
        return {sink.name: sink.summary() for sink in self.sinks}
