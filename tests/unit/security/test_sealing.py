"""Results sealed to their owner's key: only that key opens them; changes are detected."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolferry.security import sealing
from toolferry.security.sealing import (
    SealingError,
    check_public_key,
    new_keypair,
    open_file,
    seal_file,
)


def test_a_sealed_file_opens_with_its_private_key_only(tmp_path: Path) -> None:
    private, public = new_keypair()
    other_private, _ = new_keypair()
    path = tmp_path / "result.csv"
    path.write_bytes(b"id,score\n1,3\n")
    seal_file(path, public)
    sealed = path.read_bytes()
    assert sealed.startswith(sealing.MAGIC) and b"score" not in sealed
    with pytest.raises(SealingError, match="cannot be opened with this key"):
        open_file(path, other_private, tmp_path / "nope")
    open_file(path, private, tmp_path / "clear.csv")
    assert (tmp_path / "clear.csv").read_bytes() == b"id,score\n1,3\n"
    assert (tmp_path / "clear.csv").stat().st_mode & 0o077 == 0


def test_a_changed_sealed_file_is_refused(tmp_path: Path) -> None:
    private, public = new_keypair()
    path = tmp_path / "r"
    path.write_bytes(b"data")
    seal_file(path, public)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SealingError, match="changed"):
        open_file(path, private, tmp_path / "out")
    (tmp_path / "plain").write_bytes(b"not sealed")
    with pytest.raises(SealingError, match="not a sealed toolferry result"):
        open_file(tmp_path / "plain", private, tmp_path / "out")


@pytest.mark.parametrize("key", ["", "abc", "a" * 44, "!!!!"])
def test_malformed_keys_are_refused(key: str) -> None:
    with pytest.raises(SealingError, match="32-byte key"):
        check_public_key(key)


def test_files_above_the_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sealing, "MAX_SEALED_BYTES", 10)
    path = tmp_path / "big"
    path.write_bytes(b"x" * 11)
    with pytest.raises(SealingError, match="at most 10 bytes"):
        seal_file(path, new_keypair()[1])
    assert path.read_bytes() == b"x" * 11
