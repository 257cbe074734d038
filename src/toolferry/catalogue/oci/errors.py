"""Errors of the OCI layer, beside the domain errors it also raises.

ToolferryError
 ├── InvalidTask
 │    └── DigestMismatch     content does not hash to the digest that names it (400)
 ├── NotFound
 │    └── PlatformNotFound   an index has no manifest for the wanted platform (404)
 └── UpstreamError (502)
      └── StoreError             a store answered or holds something unexpected (a registry's
           │                      5xx, a broken index.json)
           └── RegistryUnavailable   no answer at all: connection refused, DNS, timeout

Missing manifests, blobs, tags and repositories raise :class:`NotFound`; refused credentials
:class:`Forbidden` with the registry's own message; malformed references, digests, tags and
manifests :class:`InvalidTask` naming the field.
"""

from __future__ import annotations

from toolferry.domain.errors import InvalidTask, NotFound, UpstreamError

__all__ = ["DigestMismatch", "PlatformNotFound", "RegistryUnavailable", "StoreError"]


class DigestMismatch(InvalidTask):
    """Content does not match its digest (or its size): tampered, truncated or mislabelled."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__("digest", f"{what} has digest {actual}, expected {expected}")
        self.what = what
        self.expected = expected
        self.actual = actual


class PlatformNotFound(NotFound):
    """An image index lists no manifest for the wanted platform; ``available`` says which exist."""

    def __init__(self, what: str, wanted: str, available: list[str]) -> None:
        listed = ", ".join(available) if available else "none"
        super().__init__(f"{what} has no image for platform {wanted}; it has: {listed}")
        self.wanted = wanted
        self.available = available


class StoreError(UpstreamError):
    """A store failed in a way that is not the caller's doing: a registry's 5xx or an answer
    the distribution API does not allow, a layout directory whose files are broken."""


class RegistryUnavailable(StoreError):
    """A registry did not answer at all; the message names its URL and the cause."""
