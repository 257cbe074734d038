"""Bearer tokens: random secrets, stored only as SHA-256 hashes."""

from __future__ import annotations

import builtins
import hashlib
import secrets

from toolferry.store.base import TokenRecord, TokenStore

_PREFIX = "tf_"


def hash_token(secret: str) -> str:
    # Tokens are 256-bit random values, so a fast unsalted hash cannot be brute-forced.
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenService:
    def __init__(self, store: TokenStore) -> None:
        self._store = store

    def create(
        self, user: str, admin: bool = False, description: str = ""
    ) -> tuple[TokenRecord, str]:
        if not user or len(user) > 128:
            raise ValueError("user must be 1 to 128 characters")
        token_id = secrets.token_hex(6)
        secret = f"{_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        record = TokenRecord(
            id=token_id, user=user, admin=admin, description=description, revoked=False
        )
        self._store.add(record, hash_token(secret))
        return record, secret

    def verify(self, secret: str) -> TokenRecord | None:
        record = self._store.by_hash(hash_token(secret))
        if record is None or record.revoked:
            return None
        return record

    def list(self, user: str | None = None) -> builtins.list[TokenRecord]:
        return self._store.list_tokens(user)

    def revoke(self, token_id: str) -> bool:
        return self._store.revoke(token_id)

    def any_active(self) -> bool:
        return self._store.any_active()

    def any_issued(self) -> bool:
        """Whether a token was ever created here (revoked ones count: revoking the last token
        must not switch authentication off)."""
        return self._store.any_active() or bool(self._store.list_tokens(None))
