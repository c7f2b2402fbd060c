"""A small threaded HTTP server and request handler for pages served on this machine (the live
view and the editor): no DNS lookup on bind, no tracebacks for clients that go away, replies with
safe headers, request logs at DEBUG.

Every request passes one guard (:meth:`QuietHandler.allowed`) before any method handler runs: on a
loopback bind, a ``Host`` header that does not name this machine gets 403, so a web page elsewhere
cannot reach the server through DNS rebinding (a browser sends the attacker's host name there).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import socketserver
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

from pipeline.closing import Closing
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

WILDCARDS = ("0.0.0.0", "", "::")
"""Bind addresses that mean every interface."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine only, so nothing else can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost, or a wildcard: may be reachable from elsewhere
        return False


def _url(host: str, port: int, query: str) -> str:
    return f"http://[{host}]:{port}/{query}" if ":" in host else f"http://{host}:{port}/{query}"


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


class QuietHandler(BaseHTTPRequestHandler):
    """Request handler basics for a local page: JSON and byte replies with safe headers, logs at DEBUG."""

    server_version = "vpipe"
    sys_version = ""  # no Python version in the Server header
    timeout = 30  # a client that stops reading frees its thread after this long
    head_only = False  # answering HEAD: headers as for GET, no body

    def parse_request(self) -> bool:
        # Every method, HEAD and POST included, goes through the guard before its do_* handler.
        if not super().parse_request():
            return False
        self.head_only = self.command == "HEAD"
        if self.allowed():
            return True
        self.close_connection = True
        return False

    def allowed(self) -> bool:
        """Whether to answer this request; otherwise this has sent the refusal. Subclasses add checks."""
        if self.server.owner.host_allowed(self.headers.get("Host", "")):  # type: ignore[attr-defined]
            return True
        self.send_json(HTTPStatus.FORBIDDEN, {"error": "unexpected Host header"})
        return False

    def do_HEAD(self) -> None:
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


class LocalHTTPServer6(LocalHTTPServer):
    address_family = socket.AF_INET6


class LocalServer(Closing):
    """A page served on a background thread, started and closed as a context manager.

    The handler reaches this object as ``self.server.owner``.

    On a loopback ``host``, a request whose ``Host`` header is not a loopback address or ``localhost`` gets 403.

    Args:
        host: Interface to bind (loopback by default; ``"::"``/``"0.0.0.0"`` serve every interface).
        port: TCP port; 0 picks a free one (read :attr:`port` after :meth:`start`).
        handler: The request handler class.
        flag: The command-line flag that set ``port``, for error messages.
    """

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], flag: str) -> None:
        if not 0 <= port <= 65535:
            raise PipelineError(f"{flag} {port}: the port must be between 0 and 65535")
        self.host = host
        self._requested_port = port
        self._handler = handler
        self._flag = flag
        self._server: LocalHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind and serve; calling it again does nothing.

        Raises:
            PipelineError: The address cannot be bound (e.g. the port is in use).
        """
        if self._server is not None:
            return self
        server_class = LocalHTTPServer6 if ":" in self.host else LocalHTTPServer
        try:
            server = server_class((self.host, self._requested_port), self._handler)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise PipelineError(
                f"{self._flag} {self._requested_port}: cannot listen on {self.host}: {reason}"
            ) from None
        server.owner = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        """The bound TCP port (the picked one when created with port 0)."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__}.start() has not been called")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The page's address on this machine; a wildcard ``host`` is shown as loopback."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return _url(host, self.port, "")

    @property
    def exposed(self) -> bool:
        """Whether other machines may connect (``host`` is not loopback)."""
        return not is_loopback(self.host)

    @property
    def address(self) -> str:
        """Where it listens, as ``host:port`` (``[::]:8080`` for IPv6)."""
        return _url(self.host, self.port, "").removeprefix("http://").rstrip("/")

    def describe(self, query: str = "") -> str:
        """Where it really listens, for a person: the bound address, and for a wildcard bind also the
        address to open on this machine (``query``, e.g. ``?token=...``, appended to both)."""
        bound = _url(self.host, self.port, query)
        return f"{bound} (all interfaces; on this machine {self.url}{query})" if self.host in WILDCARDS else bound

    def host_allowed(self, host_header: str) -> bool:
        """Whether a request's ``Host`` names this machine (any name when bound to another interface).

        A request without one is allowed: rebinding needs a browser, and browsers always send it.
        """
        if self.exposed or not host_header:
            return True
        try:
            return is_loopback(urlsplit(f"//{host_header}").hostname or "")
        except ValueError:  # not a host name at all, e.g. "[" with no closing bracket
            return False

    def close(self) -> None:
        """Stop serving; safe to call twice (:attr:`port` and :attr:`url` still say where it was)."""
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()
