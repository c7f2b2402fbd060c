"""Live views of a running pipeline: a small web server (``--serve PORT``) and desktop windows (``--show``).

Both take the latest annotated frame and counts of each source through the same call,
``publish(source, image_bgr, frame_index, timestamp_s, counts)``, which only swaps a reference
under a lock: a slow browser or window never slows the pipeline, it just sees fewer frames.

:class:`LiveView` serves, on ``127.0.0.1`` unless told otherwise:

- ``/``: an HTML page with the annotated stream and the counts, updated live (no external assets);
- ``/stream.mjpg?source=NAME``: ``multipart/x-mixed-replace`` JPEG stream of the latest frame, at
  most ``max_fps`` frames per second (default: the first source);
- ``/counts``: ``{"sources": {NAME: {"frame_index", "timestamp_s", "counts": {...}, "columns": {...}}}}``,
  ``columns`` saying what each count column counts (:meth:`LiveView.describe_columns`);
- ``/health``: ``{"status": "ok", "sources": {NAME: {"last_frame_age_s", "frames"}}}``, or HTTP 503
  with ``"status": "stale"`` once a source has not published for ``stale_after_s``; a source that
  has ended (a file played to its end, see :meth:`LiveView.end`) shows ``"ended": STATUS`` and is
  never stale.
- ``/snapshot.jpg?source=NAME``: the latest frame of NAME as one JPEG (the page's camera tiles);
- ``/chart.svg?source=NAME``, ``/api/counts``, ``/api/parking``: charts and counts from the run's
  store, read-only (see :mod:`pipeline.io.live.dashboard`).

Every path answers ``HEAD`` as it answers ``GET``, without the body.

Frames are JPEG-encoded only for connected stream clients, at most ``max_fps`` times per second
per source, however many clients watch.

Example::

    with LiveView(port=0) as view:
        print("watch at", view.url)
        for frame in frames:
            view.publish("cam1", annotated, frame.frame_index, frame.timestamp_s, analytics.row())
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import numpy as np

from pipeline.config.columns import Column
from pipeline.io.live.dashboard import Dashboard
from pipeline.io.live.latest_frames import LatestFrames
from pipeline.io.live.local_http import LocalServer, QuietHandler
from pipeline.io.live.metrics import CONTENT_TYPE_LATEST, RunMetrics
from pipeline.io.live.mjpeg import BOUNDARY, MjpegStreams
from pipeline.io.live.page import PAGE, PAGE_HEADERS

log = logging.getLogger(__name__)

SVG_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
"""A chart opened on its own runs nothing and loads nothing."""


class LiveView(LocalServer):
    """Serves the pipeline's latest annotated frames and counts over HTTP, for a browser; there is no
    authentication, so keep the default ``host`` (loopback) unless the network is trusted.

    Args:
        host: Interface to bind; ``"0.0.0.0"`` (or ``"::"``) serves every interface.
        port: TCP port; 0 picks a free one (read it from :attr:`port` after :meth:`start`).
        max_fps: Most JPEG frames per second per stream client, and encodes per second per source.
        stale_after_s: ``/health`` answers 503 ``stale`` once a source (or, before the first frame,
            the whole view) has been silent this long.
        jpeg_quality: JPEG quality, 1-100.
        max_streams: Most concurrent ``/stream.mjpg`` clients; more get 503 (each holds a thread).
        links: Link text -> URL of another page, shown above the stream (``vpipe run --serve`` links each
            source's editor, on this machine's loopback).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        max_fps: float = 10.0,
        stale_after_s: float = 10.0,
        jpeg_quality: int = 80,
        max_streams: int = 8,
        links: Mapping[str, str] | None = None,
    ) -> None:
        if not (max_fps > 0 and stale_after_s > 0 and 1 <= jpeg_quality <= 100 and max_streams >= 1):
            raise ValueError("max_fps and stale_after_s must be > 0, jpeg_quality 1-100, max_streams >= 1")
        super().__init__(host, port, _Handler, flag="--serve")
        self.max_fps = float(max_fps)
        self.stale_after_s = float(stale_after_s)
        self.jpeg_quality = int(jpeg_quality)
        self.max_streams = int(max_streams)
        anchors = " ".join(
            f'<a href="{html.escape(url)}">{html.escape(text)}</a>' for text, url in (links or {}).items()
        )
        self.page = PAGE.replace("<!--links-->", f'<nav id="links">{anchors}</nav>' if anchors else "").encode()
        self.metrics = RunMetrics()  # served at /metrics; the runs feed it their events
        self.dashboard = Dashboard()  # the charts and /api/...: the runs add their cameras and store
        self.frames = LatestFrames(self.max_fps, self.jpeg_quality)
        self.streams = MjpegStreams(self.frames, self.max_fps, self.max_streams)
        self._closed = threading.Event()
        self._started_at = time.monotonic()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve on a background thread; calling it again does nothing.

        Raises:
            PipelineError: The address cannot be bound (e.g. the port is in use).
        """
        if self._closed.is_set():
            raise RuntimeError("this LiveView is closed")
        if self._server is None:
            super().start()
            self._started_at = time.monotonic()
            log.debug("live view at %s", self.describe())  # the CLI prints the address
        return self

    @property
    def jpeg_encodes(self) -> int:
        """JPEG encodes so far (lazy encoding is observable)."""
        return self.frames.jpeg_encodes

    @property
    def stream_clients(self) -> int:
        """Open ``/stream.mjpg`` responses."""
        return self.streams.clients

    def close(self) -> None:
        """Stop serving and end open streams (within about a second); safe to call twice."""
        if self._closed.is_set():
            return
        self._closed.set()
        stream_threads = self.streams.close()
        super().close()
        for thread in stream_threads:
            thread.join(timeout=2)

    # -- publishing ----------------------------------------------------------------------------

    def publish(
        self, source: str, image_bgr: np.ndarray, frame_index: int, timestamp_s: float, counts: dict[str, float | int]
    ) -> None:
        """Make this the latest frame of ``source``; O(1), never waits for clients.

        The array is kept by reference, not copied: do not draw on it afterwards (the pipeline
        draws each frame into a new array).

        Args:
            source: The source's display name (already free of credentials).
            image_bgr: The annotated frame, HxWx3 uint8 BGR.
            frame_index: The frame's index in its source.
            timestamp_s: The frame's time in its source, in seconds.
            counts: Column name -> number, like one row of ``counts.csv``.
        """
        if not self._closed.is_set():
            self.frames.publish(source, image_bgr, frame_index, timestamp_s, counts)

    def describe_columns(self, source: str, columns: Mapping[str, Column]) -> None:
        """What each count column of ``source`` counts (:attr:`~pipeline.analytics.Analytics.column_kinds`):
        the page's tables of lines, zones, movements, crosswalks and parking follow it, not the names."""
        self.frames.describe_columns(source, columns)

    def end(self, source: str, status: str) -> None:
        """``source`` has ended with ``status`` (e.g. ``completed``): its last frame stays, and it no
        longer counts towards ``/health`` going stale."""
        self.frames.end(source, status)

    # -- what the endpoints answer -------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """The ``/counts`` document."""
        return self.frames.counts()

    def health(self) -> dict[str, Any]:
        """The ``/health`` document: ``status`` is ``ok`` or ``stale`` (served with HTTP 503)."""
        now = time.monotonic()
        sources = self.frames.ages(now)
        if sources:
            ages = [entry["last_frame_age_s"] for entry in sources.values() if "ended" not in entry]
            stale = any(age > self.stale_after_s for age in ages)
        else:  # a pipeline that never delivers a first frame is stale too
            stale = now - self._started_at > self.stale_after_s
        return {"status": "stale" if stale else "ok", "sources": sources}


class _Handler(QuietHandler):
    def do_HEAD(self) -> None:
        if urlsplit(self.path).path != "/stream.mjpg":
            super().do_HEAD()
            return
        self.send_response(HTTPStatus.OK)  # the headers a stream would start with
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        view: LiveView = self.server.owner  # type: ignore[attr-defined]
        try:
            if url.path in ("/", "/index.html"):
                self.send_bytes(HTTPStatus.OK, "text/html; charset=utf-8", view.page, PAGE_HEADERS)
            elif url.path == "/counts":
                self.send_json(HTTPStatus.OK, view.counts())
            elif url.path == "/health":
                health = view.health()
                ok = health["status"] == "ok"
                self.send_json(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, health)
            elif url.path == "/metrics":
                self.send_bytes(HTTPStatus.OK, CONTENT_TYPE_LATEST, view.metrics.text())
            elif url.path == "/stream.mjpg":
                view.streams.serve(self, parse_qs(url.query).get("source", [None])[0])
            elif url.path == "/snapshot.jpg":
                self._snapshot(view, parse_qs(url.query).get("source", [""])[0])
            elif url.path in ("/api/counts", "/api/parking", "/chart.svg"):
                self._from_store(view, url.path, url.query)
            else:
                self.send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        except OSError:  # the client went away
            pass

    def _from_store(self, view: LiveView, path: str, query: str) -> None:
        """The answers read from the run's store: the API's JSON, a camera's chart."""
        if path != "/chart.svg":
            self.send_json(*view.dashboard.api(path.removeprefix("/api/"), query))
            return
        status, chart = view.dashboard.chart(query)
        if status != HTTPStatus.OK:
            self.send_json(status, chart)
        else:
            self.send_bytes(status, "image/svg+xml; charset=utf-8", chart.encode(), SVG_HEADERS)

    def _snapshot(self, view: LiveView, name: str) -> None:
        encoded = view.frames.jpeg(name)
        if encoded is None:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": "unknown source", "sources": list(view.frames.sources)})
        else:
            self.send_bytes(HTTPStatus.OK, "image/jpeg", encoded[0])
