"""An RTSP camera on loopback for tests, built on GStreamer's RTSP server (Debian packages
python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good/-bad). Run with the system
Python that has ``gi``: ``/usr/bin/python3 tests/servers/rtsp_server.py VIDEO.mp4 PORT``.

Serves the H.264 video of an MP4 at ``rtsp://127.0.0.1:PORT/live`` in real time (the stream
ends with the file); prints ``ready`` once listening. Killing the process is a camera outage.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    video, port = sys.argv[1], sys.argv[2]
    auth = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--auth" else None
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{video}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )'
    )
    factory.set_shared(True)
    if auth is not None:
        user, password = auth.split(":", 1)
        checker = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        checker.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(checker)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("user", "media.factory.access", True)
        permissions.add_permission_for_role("user", "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory("/live", factory)
    server.attach(None)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
