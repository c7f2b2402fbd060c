#!/usr/bin/env bash
# Debian packages the test suite needs besides Python ones: headless Chromium and its driver (the
# --serve page test), Xvfb (the --show window test), mosquitto (the MQTT broker of the publish
# tests), GStreamer's RTSP server (the RTSP test camera) and PostgreSQL (the server the store tests start). Installs only what is missing; needs root or sudo. `make test` runs it.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v Xvfb >/dev/null || need+=(xvfb)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if ! /usr/bin/python3 - <<'PY' 2>/dev/null; then
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer  # noqa: F401
Gst.init(None)
assert all(Gst.ElementFactory.find(name) for name in ("qtdemux", "h264parse", "rtph264pay"))
PY
    need+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing Debian packages for the tests: ${need[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
