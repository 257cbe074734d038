"""Results sealed to their requester: a data site encrypts each output file to the public key
the task's owner registered at the hub, so neither the hub nor the storage in between ever
holds them in clear.

libsodium's sealed boxes (PyNaCl ``SealedBox``: X25519 + XSalsa20-Poly1305 with an ephemeral
sender key): only the holder of the private key opens them, and any change to a sealed file is
detected. A sealed box is made in memory, so a file may be at most :data:`MAX_SEALED_BYTES`.
Keys travel as base64 (32 bytes each).
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from toolferry.domain.errors import ToolferryError

__all__ = [
    "MAX_SEALED_BYTES",
    "SealingError",
    "check_public_key",
    "new_keypair",
    "open_file",
    "seal_file",
]

MAX_SEALED_BYTES = 256 * 1024 * 1024
MAGIC = b"toolferry-sealed-1\n"  # so that a sealed file says what it is


class SealingError(ToolferryError):
    """A key is malformed, a file too large, or a sealed file cannot be opened with this key."""


def _key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SealingError(f"{what} is not a base64-encoded 32-byte key")
    return raw


def check_public_key(text: str) -> str:
    """``text`` if it is a public key (base64, 32 bytes), else :class:`SealingError`."""
    _key(text, "the public key")
    return text.strip()


def new_keypair() -> tuple[str, str]:
    """(private, public) keys, base64."""
    private = PrivateKey.generate()
    return (
        base64.b64encode(bytes(private)).decode(),
        base64.b64encode(bytes(private.public_key)).decode(),
    )


def seal_file(path: Path, public_key: str) -> None:
    """Replace the file at ``path`` by its sealed form (atomically); a file sealed already is
    left as it is."""
    with path.open("rb") as fh:
        if fh.read(len(MAGIC)) == MAGIC:
            return  # sealed already (a release retried after a crash)
    size = path.stat().st_size
    if size > MAX_SEALED_BYTES:
        raise SealingError(
            f"{path.name} is {size:,} bytes; results are sealed in memory, at most "
            f"{MAX_SEALED_BYTES:,} bytes per file"
        )
    sealed = SealedBox(PublicKey(_key(public_key, "the public key"))).encrypt(path.read_bytes())
    _replace(path, MAGIC + sealed)


def open_file(path: Path, private_key: str, dest: Path) -> None:
    """Write the clear content of the sealed file ``path`` to ``dest``."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise SealingError(f"{path} is not a sealed toolferry result")
    try:
        clear = SealedBox(PrivateKey(_key(private_key, "the private key"))).decrypt(
            data[len(MAGIC) :]
        )
    except CryptoError:
        raise SealingError(
            f"{path} cannot be opened with this key (another key sealed it, or it was changed)"
        ) from None
    _replace(dest, clear)


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.sealing")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
