"""Resumption tokens that need no server state: the query and the position, checked.

A token is ``<payload>.<check>``, both base64url: the payload is the list request (verb,
metadataPrefix, from, until, set), the harvest-order key of the last item handed out, the
cursor and an expiry time; the check is an HMAC of the payload under a key derived from the
repository id. Tokens thus survive restarts and work on every replica of the hub; one that was
altered, belongs to another repository, or has expired answers badResumptionToken.

The check guards integrity, not secrecy: a token only says which public records come next,
so forging one gains nothing a plain request does not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from toolferry.catalogue.oai.dates import parse_range
from toolferry.catalogue.oai.errors import ErrorCode, OaiError
from toolferry.catalogue.oai.records import Key
from toolferry.catalogue.oai.sets import SET_SPEC

__all__ = ["ListQuery", "Token", "decode", "encode"]

_VERSION = 1
_FIELDS = {"v", "verb", "prefix", "from", "until", "set", "after", "cursor", "expires"}
_LIST_VERBS = ("ListIdentifiers", "ListRecords")


@dataclass(frozen=True, kw_only=True)
class ListQuery:
    """The arguments of a ListIdentifiers or ListRecords request."""

    verb: str
    prefix: str
    from_: str | None = None
    until: str | None = None
    set: str | None = None


@dataclass(frozen=True, kw_only=True)
class Token:
    query: ListQuery
    after: Key  # the last item already handed out
    cursor: int  # how many items were handed out before the next one
    expires: datetime


def _key(repository_id: str) -> bytes:
    return hashlib.sha256(b"toolferry oai resumption token\0" + repository_id.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check(repository_id: str, payload: bytes) -> bytes:
    return hmac.new(_key(repository_id), payload, hashlib.sha256).digest()[:16]


def encode(token: Token, repository_id: str) -> str:
    updated, name, version = token.after
    q = token.query
    body: dict[str, Any] = {
        "v": _VERSION,
        "verb": q.verb,
        "prefix": q.prefix,
        "from": q.from_,
        "until": q.until,
        "set": q.set,
        "after": [updated.astimezone(UTC).isoformat(), name, version],
        "cursor": token.cursor,
        "expires": int(token.expires.timestamp()),
    }
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(payload)}.{_b64(_check(repository_id, payload))}"


def _bad(why: str) -> OaiError:
    return OaiError(
        ErrorCode.BAD_RESUMPTION_TOKEN,
        f"the resumptionToken {why}; start the list again without one",
        argument="resumptionToken",
    )


def decode(text: str, repository_id: str, *, verb: str, now: datetime) -> Token:
    """The token ``text`` for a ``verb`` request; badResumptionToken unless it is intact,
    from this repository, for this verb, and not expired."""
    try:
        payload_part, check_part = text.split(".")
        payload, check = _unb64(payload_part), _unb64(check_part)
    except (ValueError, binascii.Error):
        raise _bad("is not one this repository issued") from None
    if not hmac.compare_digest(check, _check(repository_id, payload)):
        raise _bad("is not one this repository issued")
    try:
        token = _parse(json.loads(payload))
    except (ValueError, TypeError, KeyError, OverflowError, OSError, OaiError):
        raise _bad("is not one this repository issued") from None
    if token.query.verb != verb:
        raise _bad(f"belongs to {token.query.verb}, not {verb}")
    if token.expires <= now:
        raise _bad("has expired")
    return token


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("text expected")
    return value


def _opt_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError("count expected")
    return value


def _parse(body: object) -> Token:
    if not isinstance(body, dict) or set(body) != _FIELDS or body["v"] != _VERSION:
        raise ValueError("unknown token layout")
    query = ListQuery(
        verb=_text(body["verb"]),
        prefix=_text(body["prefix"]),
        from_=_opt_text(body["from"]),
        until=_opt_text(body["until"]),
        set=_opt_text(body["set"]),
    )
    if query.verb not in _LIST_VERBS:
        raise ValueError("not a list verb")
    parse_range(query.from_, query.until)
    if query.set is not None and not SET_SPEC.fullmatch(query.set):
        raise ValueError("bad set")
    after = body["after"]
    if not isinstance(after, list) or len(after) != 3:
        raise ValueError("bad position")
    updated = datetime.fromisoformat(_text(after[0]))
    if updated.tzinfo is None:
        raise ValueError("naive position")
    return Token(
        query=query,
        after=(updated.astimezone(UTC), _text(after[1]), _integer(after[2])),
        cursor=_integer(body["cursor"]),
        expires=datetime.fromtimestamp(_integer(body["expires"]), UTC),
    )
