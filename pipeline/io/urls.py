"""Source specs: which ones are network streams, and how to show them without their secrets.

Example:
    >>> mask_credentials("rtsp://admin:hunter2@10.0.0.5:554/stream1")
    'rtsp://admin:***@10.0.0.5:554/stream1'
    >>> is_stream_url("rtsp://camera/1"), is_stream_url("clip.mp4")
    (True, False)
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp")

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pass|pwd|token|key|secret|auth)=)[^&\s]*")


def is_stream_url(spec: str) -> bool:
    """Whether ``spec`` names a network stream (by its URL scheme)."""
    return urlsplit(spec).scheme.lower() in STREAM_SCHEMES


def mask_credentials(text: str) -> str:
    """Replace passwords in any URLs inside ``text`` (user info and secret-looking query values) with ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _SECRET_QUERY.sub(r"\1***", text)


def stream_name(spec: str) -> str:
    """A short, filesystem-safe name for a stream, without credentials: host and path."""
    parts = urlsplit(spec)
    raw = f"{parts.hostname or 'stream'}{'_' + str(parts.port) if parts.port else ''}{parts.path}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("_") or "stream"
