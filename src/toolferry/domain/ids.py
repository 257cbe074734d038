"""Task identifiers: 20 lowercase characters that sort by creation time."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_RANDOM_BITS = 50
_lock = threading.Lock()
_last: tuple[int, int] = (0, 0)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_task_id() -> str:
    """Milliseconds since the epoch (10 chars) then 50 random bits (10 chars).

    Within one millisecond the random part counts up (as monotonic ULIDs do), so ids made by
    one process sort in creation order, which FIFO scheduling and paging rely on.
    """
    global _last
    millis = time.time_ns() // 1_000_000
    with _lock:
        last_millis, last_random = _last
        if millis <= last_millis:
            millis, rand = last_millis, last_random + 1
            if rand >= 1 << _RANDOM_BITS:
                millis, rand = millis + 1, 0
        else:
            # Leave headroom so counting up within a millisecond never overflows.
            rand = int.from_bytes(os.urandom(7), "big") >> (56 - _RANDOM_BITS + 1)
        _last = (millis, rand)
    return _encode(millis, 10) + _encode(rand, 10)
