"""Credentials never reach a message: userinfo and secret query values are masked."""

from __future__ import annotations

import pytest

from toolferry.storage.redact import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://alice:s3cret@example.org/x", "https://***@example.org/x"),
        ("https://token@example.org/x", "https://***@example.org/x"),
        ("ftp://u:p@ss@host/path", "ftp://***@host/path"),
        ("s3://key:secret@bucket/k", "s3://***@bucket/k"),
        ("https://example.org/x", "https://example.org/x"),
        ("/data/a@b/file", "/data/a@b/file"),
        ("file:///data/user@site/x", "file:///data/user@site/x"),
        (
            "GET https://a:b@h/x failed; retry https://c:d@k/y",
            "GET https://***@h/x failed; retry https://***@k/y",
        ),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA&X-Amz-Signature=abc&part=1",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&part=1",
        ),
        ("https://h/x?sig=abc&sv=2020", "https://h/x?sig=***&sv=2020"),
        ("https://h/x?access_token=abc#frag", "https://h/x?access_token=***#frag"),
        ("https://h/x?page=2&design=a", "https://h/x?page=2&design=a"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_is_idempotent() -> None:
    once = redact("https://alice:pw@h/x?token=t")
    assert redact(once) == once
