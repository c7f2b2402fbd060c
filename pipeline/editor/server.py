"""The editor's web server: the page (package files, nothing from elsewhere), a frame, the config.

Endpoints, on ``127.0.0.1`` unless told otherwise:

- ``/``, ``/editor.js``, ``/geometry.js``, ``/editor.css``: the page;
- ``/frame.jpg?index=N``: frame N of a file or folder (0 by default), a fresh frame of a live feed;
- ``/api/state``: the config's geometry in pixels (:meth:`ConfigEditor.state`);
- ``POST /api/save``: JSON ``{coordinates, lines, zones, slots, approaches, crosswalks}``; 200 ``{"message"}``
  once written, 400 ``{"error"}`` (and nothing written) when the result would not load in ``vpipe run``;
- ``POST /api/preview``: JSON ``{"index": N}``; 200 with the detections on the frame the page shows
  (:meth:`DetectionPreview.detect`), 503 ``{"error"}`` when the config or the model does not load.

The page can write a file and run a model, so requests must come from the page itself: on loopback,
the ``Host`` header must name this machine (a web page elsewhere cannot reach it through DNS rebinding,
see :mod:`pipeline.io.live.local_http`), and a POST must be JSON from the same origin (a cross-site form
cannot send JSON without the browser asking first). Served beyond loopback, every request must also
carry the server's token: ``?token=`` in the URL once, which sets an HttpOnly, SameSite=Strict cookie
that the page's own requests then carry.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import cv2

from pipeline.editor.frames import FrameGrabber
from pipeline.editor.preview import DetectionPreview
from pipeline.editor.session import ConfigEditor
from pipeline.errors import PipelineError
from pipeline.io.live.local_http import LocalServer, QuietHandler

log = logging.getLogger(__name__)

_STATIC = {
    "/": ("editor.html", "text/html; charset=utf-8"),
    "/editor.js": ("editor.js", "text/javascript; charset=utf-8"),
    "/geometry.js": ("geometry.js", "text/javascript; charset=utf-8"),
    "/editor.css": ("editor.css", "text/css; charset=utf-8"),
}
_POLICY = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; connect-src 'self'; script-src 'self'; "
    "style-src 'self'; form-action 'none'; frame-ancestors 'none'",
}
_MAX_BODY_BYTES = 4_000_000


class EditorServer(LocalServer):
    """Serves the editor page for one source and one config file.

    Args:
        editor: The config file being edited.
        frames: The source whose frames the page draws on.
        host: Interface to bind; anything but loopback lets other machines edit the file.
        port: TCP port; 0 picks a free one.
        token: A secret every request must carry (as ``?token=`` or the cookie that sets), or None for none.
    """

    def __init__(
        self,
        editor: ConfigEditor,
        frames: FrameGrabber,
        host: str = "127.0.0.1",
        port: int = 8765,
        token: str | None = None,
    ) -> None:
        super().__init__(host, port, _Handler, flag="--port")
        self.token = token
        self.editor = editor
        self.frames = frames
        self.preview = DetectionPreview(editor.path, (frames.width, frames.height))
        static = resources.files("pipeline.editor") / "static"
        self.pages = {path: (static / name).read_bytes() for path, (name, _) in _STATIC.items()}

    @property
    def cookie_name(self) -> str:
        """The token's cookie, one per port: browsers share cookies between the ports of a host."""
        return f"vpipe-edit-{self.port}"


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise ValueError(f"{text} is out of range")
    return value


class _Handler(QuietHandler):
    set_cookie: str | None = None  # sent with the answer to a request that brought the token in its URL

    def allowed(self) -> bool:
        if not super().allowed():
            return False
        token = self.server.owner.token
        if token is None:
            return True
        given = parse_qs(urlsplit(self.path).query).get("token", [""])[0]
        if given and hmac.compare_digest(given.encode(), token.encode()):
            name = self.server.owner.cookie_name
            self.set_cookie = f"{name}={token}; HttpOnly; SameSite=Strict; Path=/"
            return True
        try:
            cookie = SimpleCookie(self.headers.get("Cookie", "")).get(self.server.owner.cookie_name)
        except CookieError:
            cookie = None
        if cookie is not None and hmac.compare_digest(cookie.value.encode(), token.encode()):
            return True
        self.send_json(HTTPStatus.FORBIDDEN, {"error": "open the address with ?token= that vpipe edit printed"})
        return False

    def end_headers(self) -> None:
        if self.set_cookie is not None:
            self.send_header("Set-Cookie", self.set_cookie)
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        token = self.server.owner.token
        super().log_message(format, *(str(arg).replace(token, "***") if token else arg for arg in args))

    def do_GET(self) -> None:
        owner = self.server.owner
        url = urlsplit(self.path)
        if url.path in _STATIC:
            self.send_bytes(HTTPStatus.OK, _STATIC[url.path][1], owner.pages[url.path], _POLICY)
        elif url.path == "/api/state":
            try:
                self.send_json(HTTPStatus.OK, owner.editor.state())
            except PipelineError as exc:
                self.send_json(HTTPStatus.CONFLICT, {"error": str(exc)})
        elif url.path == "/favicon.ico":
            self.send_response(HTTPStatus.NO_CONTENT)  # none, and no error in the browser's console
            self.end_headers()
        elif url.path == "/frame.jpg":
            self._send_frame(parse_qs(url.query).get("index", ["0"])[0])
        else:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def _send_frame(self, index_text: str) -> None:
        if not index_text.isdigit():
            self.send_json(HTTPStatus.BAD_REQUEST, {"error": "index must be a frame number"})
            return
        try:
            image = self.server.owner.frames.grab(int(index_text))
        except PipelineError as exc:
            self.send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
            return
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            self.send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "cannot encode the frame"})
            return
        self.send_bytes(HTTPStatus.OK, "image/jpeg", jpeg.tobytes())

    def do_POST(self) -> None:
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != self.headers.get("Host", ""):
            self.send_json(HTTPStatus.FORBIDDEN, {"error": "requests must come from the editor page"})
            return
        path = urlsplit(self.path).path
        if path not in ("/api/save", "/api/preview"):
            self.send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self.send_json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "expected application/json"})
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > _MAX_BODY_BYTES:
            self.send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "missing or too large a body"})
            return
        try:
            data = json.loads(self.rfile.read(int(length)), parse_constant=_refuse_constant, parse_float=_finite_float)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError; RecursionError: deep nesting
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
            self.send_json(HTTPStatus.BAD_REQUEST, {"error": f"the body is not JSON vpipe can use: {reason}"})
            return
        if path == "/api/save":
            self._save(data)
        else:
            self._preview(data)

    def _save(self, data: Any) -> None:
        try:
            message = self.server.owner.editor.save(data)
        except PipelineError as exc:
            self.send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        else:
            log.info("%s", message)
            self.send_json(HTTPStatus.OK, {"message": message})

    def _preview(self, data: Any) -> None:
        index = data.get("index", 0) if isinstance(data, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            self.send_json(HTTPStatus.BAD_REQUEST, {"error": "index must be a frame number"})
            return
        owner = self.server.owner
        try:
            answer = owner.preview.detect(owner.frames.shown(index))
        except PipelineError as exc:
            self.send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
        else:
            self.send_json(HTTPStatus.OK, {"index": index, **answer})
