"""Hide credentials in URLs before they reach a message, a log line or an event."""

from __future__ import annotations

import re

__all__ = ["redact"]

# Greedy up to the last "@" before the path: an unescaped "@" in a password must not leak its tail.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]+@")

# Pre-signed URLs (S3, GCS, Azure SAS) and API tokens carry their secret in the query string.
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&](?:[^=&#\s]*(?:signature|token|secret|password|passwd|credential|api_?key"
    r"|access_?key)[^=&#\s]*|sig|key)=)[^&#\s]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with the userinfo and secret query values of every URL in it replaced by ``***``.

    Works on a bare URL as well as on a message that quotes URLs.
    """
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    return _SECRET_PARAM.sub(r"\g<name>***", text)
