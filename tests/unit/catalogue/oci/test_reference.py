"""References as docker/distribution parses them, normalised, and round-tripped."""

from __future__ import annotations

import pytest

from toolferry.catalogue.oci.reference import (
    Reference,
    check_repository,
    check_tag,
    parse_reference,
)
from toolferry.domain.errors import InvalidTask

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", None, None),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("docker.io/busybox", "docker.io", "library/busybox", None, None),
        ("index.docker.io/user/tool:v2", "docker.io", "user/tool", "v2", None),
        ("user/tool", "docker.io", "user/tool", None, None),
        ("localhost/tool", "localhost", "tool", None, None),
        ("localhost:5000/a/b/c:t", "localhost:5000", "a/b/c", "t", None),
        ("127.0.0.1:5000/env/vm-disk:2.0", "127.0.0.1:5000", "env/vm-disk", "2.0", None),
        ("ghcr.io/org/img@" + DIGEST, "ghcr.io", "org/img", None, DIGEST),
        ("ghcr.io/org/img:1@" + DIGEST, "ghcr.io", "org/img", "1", DIGEST),
        ("Registry/img", "Registry", "img", None, None),  # upper case: a host
        ("[::1]:5000/img", "[::1]:5000", "img", None, None),
        ("a.b-c/x__y/z.w-v:T_1", "a.b-c", "x__y/z.w-v", "T_1", None),
        ("registry:5000", "docker.io", "library/registry", "5000", None),  # a tag, not a port
    ],
)
def test_references_parse_like_docker(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    reference = parse_reference(text)
    assert (reference.registry, reference.repository, reference.tag, reference.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert parse_reference(str(reference)) == reference


def test_str_is_normalised_and_familiar_is_short() -> None:
    reference = parse_reference("busybox:1")
    assert str(reference) == "docker.io/library/busybox:1"
    assert reference.familiar() == "busybox:1"
    assert reference.name == "docker.io/library/busybox"
    assert parse_reference("127.0.0.1:5000/x:1").familiar() == "127.0.0.1:5000/x:1"


def test_pinned_keeps_the_tag_and_lookup_prefers_the_digest() -> None:
    reference = parse_reference("127.0.0.1:5000/env/tool:1.0")
    assert reference.lookup == "1.0"
    pinned = reference.pinned(DIGEST)
    assert str(pinned) == f"127.0.0.1:5000/env/tool:1.0@{DIGEST}"
    assert pinned.lookup == DIGEST
    assert parse_reference("127.0.0.1:5000/env/tool").lookup == "latest"
    with pytest.raises(InvalidTask, match="malformed"):
        reference.pinned("sha256:1234")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("busy box", "white space"),
        ("busybox:", "empty tag"),
        ("busybox@", "no digest"),
        ("UPPER", "lowercase"),
        ("host.io/Upper/x", "lowercase"),
        ("host.io//x", "empty component"),
        ("host.io/x/", "empty component"),
        ("-leading", "invalid repository"),
        ("x:-tag", "invalid tag"),
        ("x:" + "t" * 129, "invalid tag"),
        ("x@sha256:abc", "malformed"),
        ("x@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("x@" + "sha256:" + "AB" * 32, "malformed"),
        ("ho_st:5000/x", "invalid registry host"),
        ("host.io/" + "a" * 260, "longer than 255"),
    ],
)
def test_malformed_references_say_why(text: str, why: str) -> None:
    with pytest.raises(InvalidTask, match=why) as caught:
        parse_reference(text)
    assert caught.value.field == "reference"


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(InvalidTask, match="lowercase"):
        Reference("docker.io", "Library/x")
    assert check_repository("a/b") == "a/b"
    assert check_tag("v1.0_rc-2") == "v1.0_rc-2"
    with pytest.raises(InvalidTask) as caught:
        check_tag(".hidden")
    assert caught.value.field == "tag"
