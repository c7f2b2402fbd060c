"""Webhooks: every record POSTed as JSON, in order, retried until delivered, never redirected."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.concurrency import Backoff
from pipeline.config import WebhookConfig
from pipeline.errors import ConfigError
from pipeline.io.publish.queue import DiskQueue
from pipeline.io.urls import mask_credentials

log = logging.getLogger(__name__)


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
