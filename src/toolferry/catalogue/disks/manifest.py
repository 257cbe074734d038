"""OVF manifests (``.mf``): one ``SHA256(name)= <hex>`` line per file of the package.

DSP0243 allows SHA1 (OVF 1.x) and SHA256/SHA512 (OVF 2.x); a package that ships a manifest
must list every file in it, so a file the manifest does not list is refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from toolferry.domain.errors import InvalidTask

__all__ = ["Checksum", "ManifestHasher", "parse_manifest"]

_LINE = re.compile(r"(SHA1|SHA256|SHA512)\((?P<name>[^)]+)\)\s*=\s*(?P<hex>[0-9a-fA-F]+)")
_HEX_LENGTHS = {"sha1": 40, "sha256": 64, "sha512": 128}


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # hashlib name: sha1, sha256, sha512
    hexdigest: str  # lower case


def parse_manifest(text: str) -> dict[str, Checksum]:
    """File name → checksum; raises :class:`InvalidTask` for a line that is not one."""
    entries: dict[str, Checksum] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _LINE.fullmatch(line)
        algorithm = match[1].lower() if match else ""
        if match is None or len(match["hex"]) != _HEX_LENGTHS[algorithm]:
            raise InvalidTask("manifest", f"line {number} is not 'SHA256(<file>)= <hex>': {line!r}")
        if match["name"] in entries:
            raise InvalidTask("manifest", f"{match['name']} is listed twice")
        entries[match["name"]] = Checksum(algorithm, match["hex"].lower())
    return entries


class ManifestHasher:
    """Hashes a stream with sha256 (the catalogue's digest) and the manifest's algorithm."""

    def __init__(self, expected: Checksum | None) -> None:
        self.expected = expected
        self._sha256 = hashlib.sha256()
        self._other = (
            hashlib.new(expected.algorithm)
            if expected is not None and expected.algorithm != "sha256"
            else None
        )

    def update(self, chunk: bytes) -> None:
        self._sha256.update(chunk)
        if self._other is not None:
            self._other.update(chunk)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def verify(self, name: str) -> None:
        """Raise :class:`InvalidTask` if what was hashed differs from the manifest's entry."""
        if self.expected is None:
            return
        got = self._other.hexdigest() if self._other is not None else self.sha256
        if got != self.expected.hexdigest:
            raise InvalidTask(
                "manifest",
                f"{name} does not match its {self.expected.algorithm.upper()} in the manifest "
                f"(expected {self.expected.hexdigest}, got {got})",
            )
