"""An MJPEG-over-HTTP camera on loopback for tests: serves a video's frames in real time.

Run in-process (``MjpegServer(video).start()``) or as a script for manual checks:
``python -m tests.servers.mjpeg sample_videos/highway.mp4 --port 8090``.
"""

from __future__ import annotations

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import cv2

BOUNDARY = "vpipeframe"


class MjpegServer:
    """Serves ``/video.mjpg`` (multipart/x-mixed-replace JPEG) on 127.0.0.1 at the video's frame rate
    (or ``fps``), on an exact schedule: the n-th frame of a connection is sent n / fps seconds after its first.

    Args:
        video: A video file whose frames are served, in a loop if ``loop``.
        port: 0 picks a free port.
        loop: Start again at the end of the video (else the stream ends).
        size: Optional (width, height) to resize frames to.
        username: With ``password``, require HTTP basic auth.
        password: See ``username``.
        fps: Serve at this rate instead of the video's own.
    """

    def __init__(
        self,
        video: str | Path,
        port: int = 0,
        loop: bool = True,
        size: tuple[int, int] | None = None,
        username: str | None = None,
        password: str | None = None,
        fps: float | None = None,
    ) -> None:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            self.fps = float(fps or stream.average_rate)
            frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(stream)]
        if size is not None:
            frames = [cv2.resize(frame, size) for frame in frames]
        self.jpegs = [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for frame in frames]
        self.loop = loop
        self._auth = None
        if username is not None and password is not None:
            import base64

            self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                if server._auth is not None and self.headers.get("Authorization") != server._auth:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                    self.end_headers()
                    return
                if self.path.split("?")[0] != "/video.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                started, index = time.monotonic(), 0
                try:
                    while not server._stop.is_set():
                        if index >= len(server.jpegs):
                            if not server.loop:
                                return
                            index, started = 0, time.monotonic()
                        jpeg = server.jpegs[index]
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                        index += 1
                        delay = started + index / server.fps - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                except (BrokenPipeError, ConnectionResetError):
                    return

        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> MjpegServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve a video as an MJPEG camera on 127.0.0.1.")
    parser.add_argument("video")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    mjpeg = MjpegServer(args.video, port=args.port).start()
    print(mjpeg.url, flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        mjpeg.stop()
