"""Resumption tokens: stateless round trips; anything altered, foreign or expired is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from toolferry.catalogue.oai import ErrorCode, OaiError, tokens
from toolferry.catalogue.oai.tokens import ListQuery, Token, decode, encode

NOW = datetime(2024, 6, 1, tzinfo=UTC)
TOKEN = Token(
    query=ListQuery(
        verb="ListRecords", prefix="toolferry", from_="2024-01-01", until="2024-12-31", set="kind"
    ),
    after=(datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), "lab/align", 2),
    cursor=40,
    expires=NOW + timedelta(hours=1),
)


def refused(text: str, *, repository: str = "hub.example.org", verb: str = "ListRecords") -> str:
    with pytest.raises(OaiError) as caught:
        decode(text, repository, verb=verb, now=NOW)
    assert caught.value.code is ErrorCode.BAD_RESUMPTION_TOKEN
    assert caught.value.argument == "resumptionToken"
    return caught.value.message


def test_a_token_round_trips_exactly() -> None:
    text = encode(TOKEN, "hub.example.org")
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert decode(text, "hub.example.org", verb="ListRecords", now=NOW) == TOKEN


def test_the_position_is_kept_in_utc_at_full_precision() -> None:
    local = datetime(2024, 3, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    token = Token(query=TOKEN.query, after=(local, "a", 1), cursor=0, expires=TOKEN.expires)
    back = decode(encode(token, "hub.example.org"), "hub.example.org", verb="ListRecords", now=NOW)
    assert back.after == (datetime(2024, 3, 1, 12, 0, 0, 5, tzinfo=UTC), "a", 1)


def test_foreign_expired_and_misused_tokens_are_refused() -> None:
    text = encode(TOKEN, "hub.example.org")
    assert "not one this repository issued" in refused(text, repository="other.example.org")
    assert "belongs to ListRecords" in refused(text, verb="ListIdentifiers")
    expired = encode(
        Token(query=TOKEN.query, after=TOKEN.after, cursor=0, expires=NOW), "hub.example.org"
    )
    assert "expired" in refused(expired)


def test_a_well_signed_token_with_a_bad_body_is_still_refused() -> None:
    """Defence in depth: even a payload that passes the check is parsed strictly."""

    def signed(body: object) -> str:
        payload = json.dumps(body).encode()
        return f"{tokens._b64(payload)}.{tokens._b64(tokens._check('hub.example.org', payload))}"

    good = json.loads(tokens._unb64(encode(TOKEN, "hub.example.org").split(".")[0]))
    for change in (
        {"v": 2},
        {"verb": "ListSets"},
        {"cursor": -1},
        {"cursor": True},
        {"from": "2024-13-01"},
        {"set": "a b"},
        {"after": ["2024-03-01T12:00:00", "a", 1]},
        {"after": ["x", "a", 1]},
        {"expires": 10**30},
        {"extra": 1},
    ):
        refused(signed(good | change))
    refused(signed([1, 2, 3]))
    assert decode(signed(good), "hub.example.org", verb="ListRecords", now=NOW) == TOKEN
