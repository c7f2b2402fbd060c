"""Source specs: which ones are network streams, and how to show them without their secrets.

URLs are split by hand rather than with :mod:`urllib.parse`, which rejects (or splits in the wrong
place) the passwords people really use: a raw ``@``, ``#``, ``/`` or space. The user info runs from
``scheme://`` to the *last* ``@`` on the line (before the next URL): masking too much is harmless,
masking too little prints a password.

Example:
    >>> mask_credentials("rtsp://admin:hunter2@10.0.0.5:554/stream1")
    'rtsp://admin:***@10.0.0.5:554/stream1'
    >>> mask_credentials("rtsp://admin:p@ss#w/rd@cam/1 refused")
    'rtsp://admin:***@cam/1 refused'
    >>> mask_credentials("https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@cam/live?x=1&access_token=abc")
    'https://***@cam/live?x=1&access_token=***'
    >>> mask_credentials("rtsp://cam/x?token=abc: connection refused ('http://cam/?sig=a:b')")
    "rtsp://cam/x?token=***: connection refused ('http://cam/?sig=***')"
    >>> is_stream_url("rtsp://camera/1"), is_stream_url("clip.mp4")
    (True, False)
"""

from __future__ import annotations

import re

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp")

_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
_QUERY_PARAMETER = re.compile(
    r"(?P<lead>[?&;](?P<name>[^=&;#?\s]+)=)(?P<value>[^&;#\s]*?)(?=[:,.)\]'\"]*(?:[&;#\s]|$))"
)
"""A query parameter; its value ends before the punctuation that ends the URL in a message (the ``: ``
of ``URL: reason``, a closing quote or bracket), which stays visible."""
_SECRET_NAME_PARTS = ("pass", "pwd", "token", "key", "secret", "auth", "sig", "credential", "session", "jwt")
"""A query parameter whose name (lowercased, without ``-`` and ``_``) contains one of these holds a
secret: password, access_token, apikey, api_key, X-Amz-Signature, X-Amz-Credential, sig, ..."""
_PLAIN_USER = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,15}")


def is_stream_url(spec: str) -> bool:
    """Whether ``spec`` names a network stream (by its URL scheme)."""
    match = _SCHEME.match(spec)
    return match is not None and match[0][:-3].lower() in STREAM_SCHEMES


def _shown_user_info(user_info: str) -> str:
    """``user:***`` when a password follows a user name that looks like a name (letters first, up to 16
    characters, at most 4 digits); otherwise ``***``: the user part may be a token itself."""
    user, has_password, _ = user_info.partition(":")
    if has_password and _PLAIN_USER.fullmatch(user) and sum(c.isdigit() for c in user) <= 4:
        return f"{user}:***"
    return "***"


def _mask_query(match: re.Match[str]) -> str:
    name = match["name"].lower().replace("-", "").replace("_", "")
    if any(part in name for part in _SECRET_NAME_PARTS):
        return f"{match['lead']}***"
    return match[0]


def mask_credentials(text: str) -> str:
    """Replace the user info of every URL in ``text`` and the values of secret-looking query
    parameters with ``***``; a user name that looks like a name stays readable."""
    pieces: list[str] = []
    position = 0
    starts = list(_SCHEME.finditer(text))
    for index, scheme in enumerate(starts):
        pieces.append(text[position : scheme.end()])
        line_end = text.find("\n", scheme.end())
        end = min(
            starts[index + 1].start() if index + 1 < len(starts) else len(text),
            line_end if line_end >= 0 else len(text),
        )
        at = text.rfind("@", scheme.end(), end)
        position = scheme.end()
        if at >= 0:
            pieces.append(_shown_user_info(text[scheme.end() : at]))
            position = at
    pieces.append(text[position:])
    return _QUERY_PARAMETER.sub(_mask_query, "".join(pieces))


def stream_name(spec: str) -> str:
    """A short, filesystem-safe name for a stream, without credentials: host, port and path."""
    scheme = _SCHEME.match(spec)
    rest = spec[scheme.end() :] if scheme else spec
    rest = rest[rest.rfind("@") + 1 :]
    host_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    path_end = min((i for i in (rest.find(c) for c in "?#") if i >= 0), default=len(rest))
    raw = rest[:host_end].lower() + rest[host_end:path_end]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("_") or "stream"
