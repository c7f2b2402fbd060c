"""The ``/stream.mjpg`` clients of a live view: each client's thread sends the newest JPEG of its
source (``multipart/x-mixed-replace``), at most ``max_fps`` per second, until it leaves or the view
closes."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from http import HTTPStatus
from typing import Any

from pipeline.io.live.latest_frames import LatestFrames
from pipeline.io.live.local_http import QuietHandler

BOUNDARY = "vpipe-frame"
# Resend the last JPEG this often while a source is idle, so a client that went away is noticed
# (the write fails) and its thread ends instead of waiting for the next frame.
_KEEPALIVE_S = 2.0


class MjpegStreams:
    """Stream clients of one live view.

    Args:
        frames: The board the frames come from.
        max_fps: Most frames per second per client.
        max_streams: Most clients at once; more get 503 (each holds a thread).
    """

    def __init__(self, frames: LatestFrames, max_fps: float, max_streams: int) -> None:
        self.frames = frames
        self.max_fps = max_fps
        self.max_streams = max_streams
        self._streams: dict[socket.socket, threading.Thread] = {}
        self._closed = threading.Event()

    @property
    def clients(self) -> int:
        """Open streams."""
        with self.frames.lock:
            return len(self._streams)

    def close(self) -> list[threading.Thread]:
        """End every stream (their connections are shut down); returns their threads to join."""
        self._closed.set()
        with self.frames.lock:
            self.frames.lock.notify_all()  # wakes streams waiting for a frame
            streams = list(self._streams.items())
        for connection, _ in streams:
            with contextlib.suppress(OSError):  # unblocks a stream stuck writing to a client that stopped reading
                connection.shutdown(socket.SHUT_RDWR)
        return [thread for _, thread in streams]

    def serve(self, handler: QuietHandler, name: str | None) -> None:
        """Serve ``/stream.mjpg`` on ``handler``'s connection until the client leaves or :meth:`close`."""
        # Replies are written after the lock is released: a slow client must never hold up publish().
        refusal: tuple[HTTPStatus, dict[str, Any]] | None = None
        with self.frames.lock:
            if name is not None and name not in self.frames.sources:
                refusal = HTTPStatus.NOT_FOUND, {"error": "unknown source", "sources": list(self.frames.sources)}
            elif len(self._streams) >= self.max_streams:
                refusal = HTTPStatus.SERVICE_UNAVAILABLE, {"error": "too many stream clients"}
            else:
                self._streams[handler.connection] = threading.current_thread()
        if refusal is not None:
            handler.send_json(*refusal)
            return
        try:
            handler.send_response(HTTPStatus.OK)
            handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            handler.send_header("Cache-Control", "no-store")
            handler.send_header("Connection", "close")
            handler.end_headers()
            self._send_frames(handler, name)
        except OSError:  # the client went away, or close() shut the connection
            pass
        finally:
            with self.frames.lock:
                self._streams.pop(handler.connection, None)

    def _send_frames(self, handler: QuietHandler, name: str | None) -> None:
        interval = 1.0 / self.max_fps
        sent = 0  # sequence number of the frame sent last
        due = time.monotonic()
        while not self._closed.is_set():
            if self._closed.wait(max(0.0, due - time.monotonic())):  # pacing: at most max_fps
                return
            with self.frames.lock:
                if name is None:  # the default: the first source, once there is one
                    self.frames.lock.wait_for(
                        lambda: self.frames.sources or self._closed.is_set(), timeout=_KEEPALIVE_S
                    )
                    name = next(iter(self.frames.sources), None)
                    if name is None:
                        continue
                latest = self.frames.sources[name]
                self.frames.lock.wait_for(
                    lambda latest=latest, sent=sent: latest.frames != sent or self._closed.is_set(),
                    timeout=_KEEPALIVE_S,
                )
            if self._closed.is_set():
                return
            encoded = self.frames.jpeg(name)
            if encoded is None:
                continue
            jpeg, sent = encoded
            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
            handler.wfile.write(head + jpeg + b"\r\n")
            due = time.monotonic() + interval
