"""Task identifiers: 20 lowercase characters that sort by creation time."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_task_id() -> str:
    """Milliseconds since the epoch (10 chars) then 50 random bits (10 chars)."""
    millis = time.time_ns() // 1_000_000
    return _encode(millis, 10) + _encode(int.from_bytes(os.urandom(7), "big") >> 6, 10)
