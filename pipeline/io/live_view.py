"""Live views of a running pipeline: a small web server (``--serve PORT``) and desktop windows (``--show``).

Both take the latest annotated frame and counts of each source through the same call,
``publish(source, image_bgr, frame_index, timestamp_s, counts)``, which only swaps a reference
under a lock: a slow browser or window never slows the pipeline, it just sees fewer frames.

:class:`LiveView` serves, on ``127.0.0.1`` unless told otherwise:

- ``/``: an HTML page with the annotated stream and the counts, updated live (no external assets);
- ``/stream.mjpg?source=NAME``: ``multipart/x-mixed-replace`` JPEG stream of the latest frame, at
  most ``max_fps`` frames per second (default: the first source);
- ``/counts``: ``{"sources": {NAME: {"frame_index", "timestamp_s", "counts": {...}}}}``;
- ``/health``: ``{"status": "ok", "sources": {NAME: {"last_frame_age_s", "frames"}}}``, or HTTP 503
  with ``"status": "stale"`` once a source has not published for ``stale_after_s``; a source that
  has ended (a file played to its end, see :meth:`LiveView.end`) shows ``"ended": STATUS`` and is
  never stale.

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

import contextlib
import html
import json
import logging
import math
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from pipeline.errors import PipelineError
from pipeline.io.metrics import CONTENT_TYPE_LATEST, RunMetrics

log = logging.getLogger(__name__)

_BOUNDARY = "vpipe-frame"
# Resend the last JPEG this often while a source is idle, so a client that went away is noticed
# (the write fails) and its thread ends instead of waiting for the next frame.
_KEEPALIVE_S = 2.0


@dataclass(eq=False)
class _Latest:
    """The latest frame of one source and its cached JPEG (guarded by the view's lock)."""

    image: np.ndarray
    frame_index: int
    timestamp_s: float
    counts: dict[str, float | int]
    published_at: float  # time.monotonic()
    frames: int = 1  # publishes so far; also the frame's sequence number
    ended: str | None = None  # the source's final status once it has ended
    jpeg: bytes | None = None
    jpeg_frames: int = 0  # the value of ``frames`` that ``jpeg`` shows
    encoded_at: float = -math.inf
    # Stream clients of this source take turns encoding; the publisher never takes this lock.
    encoding: threading.Lock = field(default_factory=threading.Lock)


def _jsonable(value: object) -> object:
    """A count as plain JSON: numpy scalars unwrapped, NaN and infinities as null."""
    if value is None or isinstance(value, bool | np.bool_):
        return None if value is None else bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    return str(value)


class LiveView:
    """Serves the pipeline's latest annotated frames and counts over HTTP, for a browser.

    There is no authentication: keep the default ``host`` (loopback) unless the network is trusted.

    Args:
        host: Interface to bind; ``"0.0.0.0"`` (or ``"::"``) serves every interface.
        port: TCP port; 0 picks a free one (read it from :attr:`port` after :meth:`start`).
        max_fps: Most JPEG frames per second per stream client, and encodes per second per source.
        stale_after_s: ``/health`` answers 503 ``stale`` once a source (or, before the first frame,
            the whole view) has been silent this long.
        jpeg_quality: JPEG quality, 1-100.
        max_streams: Most concurrent ``/stream.mjpg`` clients; more get 503 (each holds a thread).
        links: Link text -> port of another page on this host, shown above the stream (``vpipe run --serve``
            links each source's editor); the link keeps the host name the browser used for this page.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        max_fps: float = 10.0,
        stale_after_s: float = 10.0,
        jpeg_quality: int = 80,
        max_streams: int = 8,
        links: Mapping[str, int] | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise PipelineError(f"--serve {port}: the port must be between 0 and 65535")
        if not (max_fps > 0 and stale_after_s > 0 and 1 <= jpeg_quality <= 100 and max_streams >= 1):
            raise ValueError("max_fps and stale_after_s must be > 0, jpeg_quality 1-100, max_streams >= 1")
        self.host = host
        self._requested_port = port
        self.max_fps = float(max_fps)
        self.stale_after_s = float(stale_after_s)
        self.jpeg_quality = int(jpeg_quality)
        self.max_streams = int(max_streams)
        anchors = " ".join(
            f'<a data-port="{int(port)}" href="/">{html.escape(text)}</a>' for text, port in (links or {}).items()
        )
        self.page = _PAGE.replace("<!--links-->", f'<nav id="links">{anchors}</nav>' if anchors else "").encode()
        self.jpeg_encodes = 0  # JPEG encodes so far (lazy encoding is observable)
        self.metrics = RunMetrics()  # served at /metrics; the runs feed it their events
        self._lock = threading.Condition()
        self._sources: dict[str, _Latest] = {}
        self._streams: dict[socket.socket, threading.Thread] = {}
        self._closed = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started_at = time.monotonic()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve on a background thread; calling it again does nothing.

        Raises:
            PipelineError: The address cannot be bound (e.g. the port is in use).
        """
        if self._closed.is_set():
            raise RuntimeError("this LiveView is closed")
        if self._server is not None:
            return self
        server_class = _Server6 if ":" in self.host else _Server
        try:
            server = server_class((self.host, self._requested_port), _Handler)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise PipelineError(f"--serve {self._requested_port}: cannot listen on {self.host}: {reason}") from None
        server.view = self
        self._server = server
        self._started_at = time.monotonic()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="live-view", daemon=True
        )
        self._thread.start()
        log.info("live view at %s", self.url)
        return self

    @property
    def port(self) -> int:
        """The bound TCP port (the picked one when created with port 0)."""
        if self._server is None:
            raise RuntimeError("LiveView.start() has not been called")
        return int(self._server.server_address[1])

    @property
    def stream_clients(self) -> int:
        """Open ``/stream.mjpg`` responses."""
        with self._lock:
            return len(self._streams)

    @property
    def url(self) -> str:
        """The page's address; a wildcard ``host`` is shown as loopback."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}/" if ":" in host else f"http://{host}:{self.port}/"

    def close(self) -> None:
        """Stop serving and end open streams (within about a second); safe to call twice."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            self._lock.notify_all()  # wakes streams waiting for a frame
            streams = list(self._streams.items())
        for connection, _ in streams:
            with contextlib.suppress(OSError):  # unblocks a stream stuck writing to a client that stopped reading
                connection.shutdown(socket.SHUT_RDWR)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for _, thread in streams:
            thread.join(timeout=2)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

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
        if self._closed.is_set():
            return
        now = time.monotonic()
        counts = dict(counts)  # the caller may reuse its dict
        with self._lock:
            latest = self._sources.get(source)
            if latest is None:
                self._sources[source] = _Latest(image_bgr, int(frame_index), float(timestamp_s), counts, now)
            else:
                latest.image, latest.frame_index, latest.timestamp_s = image_bgr, int(frame_index), float(timestamp_s)
                latest.counts, latest.published_at = counts, now
                latest.frames += 1
            self._lock.notify_all()

    def end(self, source: str, status: str) -> None:
        """``source`` has ended with ``status`` (e.g. ``completed``): its last frame stays, and it no
        longer counts towards ``/health`` going stale."""
        with self._lock:
            latest = self._sources.get(source)
            if latest is not None:
                latest.ended = status

    # -- what the endpoints answer -------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """The ``/counts`` document."""
        with self._lock:
            return {
                "sources": {
                    name: {
                        "frame_index": latest.frame_index,
                        "timestamp_s": _jsonable(latest.timestamp_s),
                        "counts": {str(key): _jsonable(value) for key, value in latest.counts.items()},
                    }
                    for name, latest in self._sources.items()
                }
            }

    def health(self) -> dict[str, Any]:
        """The ``/health`` document: ``status`` is ``ok`` or ``stale`` (served with HTTP 503)."""
        now = time.monotonic()
        with self._lock:
            sources: dict[str, dict[str, Any]] = {
                name: {"last_frame_age_s": round(now - latest.published_at, 3), "frames": latest.frames}
                | ({"ended": latest.ended} if latest.ended else {})
                for name, latest in self._sources.items()
            }
        if sources:
            ages = [entry["last_frame_age_s"] for entry in sources.values() if "ended" not in entry]
            stale = any(age > self.stale_after_s for age in ages)
        else:  # a pipeline that never delivers a first frame is stale too
            stale = now - self._started_at > self.stale_after_s
        return {"status": "stale" if stale else "ok", "sources": sources}

    def _jpeg(self, name: str) -> tuple[bytes, int] | None:
        """The latest frame of ``name`` as JPEG and its sequence number; encodes at most ``max_fps``/s."""
        with self._lock:
            latest = self._sources.get(name)
        if latest is None:
            return None
        with latest.encoding:
            with self._lock:
                fresh = latest.jpeg_frames == latest.frames
                too_soon = time.monotonic() - latest.encoded_at < 1.0 / self.max_fps
                if latest.jpeg is not None and (fresh or too_soon):
                    return latest.jpeg, latest.jpeg_frames
                image, frames = latest.image, latest.frames
            ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise ValueError(f"cannot encode a {image.shape} {image.dtype} frame as JPEG")
            with self._lock:
                latest.jpeg, latest.jpeg_frames, latest.encoded_at = buffer.tobytes(), frames, time.monotonic()
                self.jpeg_encodes += 1
                return latest.jpeg, frames

    def _stream(self, handler: _Handler, name: str | None) -> None:
        """Serve ``/stream.mjpg`` until the client leaves or the view closes."""
        # Replies are written after the lock is released: a slow client must never hold up publish().
        refusal: tuple[HTTPStatus, dict[str, Any]] | None = None
        with self._lock:
            if name is not None and name not in self._sources:
                refusal = HTTPStatus.NOT_FOUND, {"error": "unknown source", "sources": list(self._sources)}
            elif len(self._streams) >= self.max_streams:
                refusal = HTTPStatus.SERVICE_UNAVAILABLE, {"error": "too many stream clients"}
            else:
                self._streams[handler.connection] = threading.current_thread()
        if refusal is not None:
            handler.send_json(*refusal)
            return
        try:
            handler.send_response(HTTPStatus.OK)
            handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
            handler.send_header("Cache-Control", "no-store")
            handler.send_header("Connection", "close")
            handler.end_headers()
            self._send_frames(handler, name)
        except OSError:  # the client went away, or close() shut the connection
            pass
        finally:
            with self._lock:
                self._streams.pop(handler.connection, None)

    def _send_frames(self, handler: _Handler, name: str | None) -> None:
        interval = 1.0 / self.max_fps
        sent = 0  # sequence number of the frame sent last
        due = time.monotonic()
        while not self._closed.is_set():
            if self._closed.wait(max(0.0, due - time.monotonic())):  # pacing: at most max_fps
                return
            with self._lock:
                if name is None:  # the default: the first source, once there is one
                    self._lock.wait_for(lambda: self._sources or self._closed.is_set(), timeout=_KEEPALIVE_S)
                    name = next(iter(self._sources), None)
                    if name is None:
                        continue
                latest = self._sources[name]
                self._lock.wait_for(
                    lambda latest=latest, sent=sent: latest.frames != sent or self._closed.is_set(),
                    timeout=_KEEPALIVE_S,
                )
            if self._closed.is_set():
                return
            encoded = self._jpeg(name)
            if encoded is None:
                continue
            jpeg, sent = encoded
            head = f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
            handler.wfile.write(head + jpeg + b"\r\n")
            due = time.monotonic() + interval


class LocalHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server for a local page: no DNS lookup on bind, no tracebacks for routine errors."""

    daemon_threads = True  # a stuck client never keeps the process alive

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall for seconds without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that disconnects mid-response is routine, not worth a traceback on stderr.
        error = sys.exc_info()[1]
        level = logging.DEBUG if isinstance(error, OSError) else logging.WARNING
        log.log(level, "%s: error serving a request: %s", type(self).__name__, error, exc_info=level == logging.DEBUG)


class _Server(LocalHTTPServer):
    view: LiveView


class _Server6(_Server):
    address_family = socket.AF_INET6


class QuietHandler(BaseHTTPRequestHandler):
    """Request handler basics for a local page: JSON and byte replies with safe headers, logs at DEBUG."""

    server_version = "vpipe"
    sys_version = ""  # no Python version in the Server header
    timeout = 30  # a client that stops reading frees its thread after this long
    head_only = False  # answering HEAD: headers as for GET, no body

    def do_HEAD(self) -> None:
        self.head_only = True
        self.do_GET()

    def send_json(self, status: HTTPStatus, document: object) -> None:
        self.send_bytes(status, "application/json", json.dumps(document, allow_nan=False).encode())

    def send_bytes(
        self, status: HTTPStatus, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not self.head_only:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Not on stderr: a page polling twice a second for weeks would flood it.
        log.debug("%s %s: " + format, type(self).__name__, self.address_string(), *args)


class _Handler(QuietHandler):
    server: _Server

    def do_HEAD(self) -> None:
        if urlsplit(self.path).path != "/stream.mjpg":
            super().do_HEAD()
            return
        self.send_response(HTTPStatus.OK)  # the headers a stream would start with
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        view = self.server.view
        try:
            if url.path in ("/", "/index.html"):
                self.send_bytes(HTTPStatus.OK, "text/html; charset=utf-8", view.page, _PAGE_HEADERS)
            elif url.path == "/counts":
                self.send_json(HTTPStatus.OK, view.counts())
            elif url.path == "/health":
                health = view.health()
                ok = health["status"] == "ok"
                self.send_json(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, health)
            elif url.path == "/metrics":
                self.send_bytes(HTTPStatus.OK, CONTENT_TYPE_LATEST, view.metrics.text())
            elif url.path == "/stream.mjpg":
                view._stream(self, parse_qs(url.query).get("source", [None])[0])
            else:
                self.send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        except OSError:  # the client went away
            pass


# The page loads nothing from elsewhere (the policy enforces it) and renders names as text, never HTML.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; connect-src 'self'; "
    "script-src 'unsafe-inline'; style-src 'unsafe-inline'",
}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vpipe live</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1em; background: #111; color: #eee; }
#stream { display: block; max-width: 100%; min-height: 60px; margin: .5em 0; background: #000; }
table { border-collapse: collapse; margin: .3em 1em .8em 0; display: inline-table; vertical-align: top; }
th, td { padding: .15em .6em; text-align: right; border-bottom: 1px solid #333; }
th:first-child, td:first-child { text-align: left; }
h2 { font-size: 1em; margin: .6em 0 .2em; }
.muted { color: #999; }
nav a { color: #8ab4f8; margin-right: 1em; }
</style>
</head>
<body>
<!--links-->
<label>source <select id="source"></select></label> <span id="status" class="muted">waiting for frames</span>
<img id="stream" alt="annotated stream">
<div id="counts"></div>
<script>
"use strict";
const img = document.getElementById("stream");
const select = document.getElementById("source");
const countsBox = document.getElementById("counts");
const statusBox = document.getElementById("status");
let shown = null;  // the source in the <img>; null: the server's default (the first source)

function showStream(name) {
  shown = name;
  const query = name === null ? "" : "source=" + encodeURIComponent(name) + "&";
  img.src = "stream.mjpg?" + query + "t=" + Date.now();
}
img.onerror = () => setTimeout(() => showStream(shown), 1000);  // server restarting: retry
select.onchange = () => showStream(select.value);

function table(headers, rows) {
  const t = document.createElement("table");
  for (const [i, cells] of [headers, ...rows].entries()) {
    const tr = t.insertRow();
    for (const text of cells) {
      const cell = document.createElement(i === 0 ? "th" : "td");
      cell.textContent = text;
      tr.appendChild(cell);
    }
  }
  return t;
}

function sourceBlock(name, source) {
  const lines = new Map(), zones = [], other = [];
  for (const [key, value] of Object.entries(source.counts)) {
    let m;
    if ((m = key.match(/^(.+)_(in|out)$/))) {
      if (!lines.has(m[1])) lines.set(m[1], {in: "", out: ""});
      lines.get(m[1])[m[2]] = value;
    } else if ((m = key.match(/^(.+)_count$/))) zones.push([m[1], value]);
    else other.push([key, value]);
  }
  const block = document.createElement("section");
  const title = document.createElement("h2");
  title.textContent = name + "  \\u00b7  frame " + source.frame_index + " at " + source.timestamp_s.toFixed(2) + " s";
  block.appendChild(title);
  if (lines.size) block.appendChild(table(["line", "in", "out"], [...lines].map(([n, v]) => [n, v.in, v.out])));
  if (zones.length) block.appendChild(table(["zone", "count"], zones));
  if (other.length) block.appendChild(table(["", ""], other));
  return block;
}

function render(data) {
  const names = Object.keys(data.sources);
  if ([...select.options].map(o => o.value).join("\\n") !== names.join("\\n")) {
    select.replaceChildren(...names.map(n => new Option(n, n)));
    select.value = shown === null ? names[0] : shown;
  }
  select.parentElement.hidden = names.length < 2;
  countsBox.replaceChildren(...names.map(n => sourceBlock(n, data.sources[n])));
  statusBox.textContent = names.length ? "" : "waiting for frames";
}

async function poll() {
  try {
    const response = await fetch("counts", {cache: "no-store"});
    if (response.ok) render(await response.json());
  } catch (error) {
    statusBox.textContent = "disconnected, retrying";
  }
  setTimeout(poll, 500);
}

for (const a of document.querySelectorAll("a[data-port]")) {
  a.href = location.protocol + "//" + location.hostname + ":" + a.dataset.port + "/";
}

// Started after "load": an endless MJPEG response must not keep the page loading.
window.addEventListener("load", () => { showStream(null); poll(); });
</script>
</body>
</html>
"""


# -- --show ------------------------------------------------------------------------------------

# Run in a child process: Qt aborts the whole process (SIGABRT) when it cannot reach a display.
_WINDOW_PROBE = (
    "import cv2, numpy as np\n"
    "cv2.namedWindow('vpipe-probe', cv2.WINDOW_NORMAL)\n"
    "cv2.imshow('vpipe-probe', np.zeros((8, 8, 3), np.uint8))\n"
    "cv2.waitKey(1)\n"
    "cv2.destroyAllWindows()\n"
)


def _opencv_gui() -> str:
    """The GUI backend this cv2 was built with ("NONE" in opencv-python-headless)."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return match.group(1) if match else "NONE"


def check_display(timeout_s: float = 20.0) -> None:
    """Check that OpenCV can open a window here, without risking this process.

    Raises:
        PipelineError: One line starting ``--show needs a display`` that says what is missing.
    """
    hint = "use --serve PORT to watch in a browser"
    if _opencv_gui().upper() == "NONE":
        raise PipelineError(
            f"--show needs a display and an OpenCV with GUI support; this cv2 has none "
            f"(opencv-python-headless?): install opencv-python, or {hint}"
        )
    if sys.platform.startswith(("linux", "freebsd")) and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise PipelineError(f"--show needs a display: DISPLAY is not set (headless machine?); {hint}")
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _WINDOW_PROBE], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise PipelineError(
            f"--show needs a display: opening a test window took over {timeout_s:.0f} s; {hint}"
        ) from None
    if probe.returncode != 0:
        lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
        reason = next((line for line in lines if "display" in line.lower()), lines[-1] if lines else "it failed")
        raise PipelineError(f"--show needs a display: cannot open a window ({reason[:200]}); {hint}")


class WindowView:
    """Shows each source's latest annotated frame in its own OpenCV window (``--show``).

    Every OpenCV GUI call happens on one thread of its own (GUI toolkits want a single GUI thread),
    which also keeps the windows responsive between frames. Not for macOS, where windows must
    belong to the main thread.

    Args:
        max_fps: Most frames per second shown per window.
        title: Window titles are ``"{title}: {source}"``.

    Raises:
        PipelineError: No usable display (one line, ``--show needs a display ...``).
    """

    def __init__(self, max_fps: float = 30.0, title: str = "vpipe") -> None:
        if max_fps <= 0:
            raise ValueError("max_fps must be > 0")
        check_display()
        self.title = title
        self.frames_shown = 0  # imshow calls so far
        self._interval_ms = max(1, round(1000 / max_fps))
        self._lock = threading.Lock()
        self._pending: dict[str, np.ndarray] = {}
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="window-view", daemon=True)
        self._thread.start()

    def publish(
        self, source: str, image_bgr: np.ndarray, frame_index: int, timestamp_s: float, counts: dict[str, float | int]
    ) -> None:
        """Show this frame in ``source``'s window soon; O(1), frames in between are skipped.

        Same signature as :meth:`LiveView.publish` (the counts are drawn on the frame already).
        Re-raises an error of the window thread.
        """
        self._raise_pending()
        with self._lock:
            self._pending[source] = image_bgr

    def _run(self) -> None:
        windows = False
        try:
            while not self._stop.is_set():
                with self._lock:
                    pending, self._pending = self._pending, {}
                for source, image in pending.items():
                    cv2.imshow(f"{self.title}: {source}", image)
                    self.frames_shown += 1
                    windows = True
                if windows:
                    cv2.waitKey(self._interval_ms)  # paces and keeps the windows repainting
                else:
                    self._stop.wait(self._interval_ms / 1000)
        except BaseException as error:  # handed to the publishing thread
            self._error = error
        finally:
            if windows:
                cv2.destroyAllWindows()
                cv2.waitKey(1)  # lets the toolkit actually remove them

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def end(self, source: str, status: str) -> None:
        """``source`` has ended: its window keeps showing its last frame."""

    def close(self) -> None:
        """Close the windows and stop the thread; re-raises an error of the window thread."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._raise_pending()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
