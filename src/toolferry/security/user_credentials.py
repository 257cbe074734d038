"""Users' own storage credentials: checked, encrypted at rest, decrypted only for a transfer.

Each user keeps named credentials, each for the URLs under one prefix. The secrets (password,
token, S3 secret key and session token, header values) are sealed with Fernet (AES-128-CBC plus
HMAC-SHA256) under one key that lives outside the database, in ``DATA_DIR/credentials.key``
(mode 0600, made with the first credential): a copy of the database alone reveals no secret.
Every hub serving the same database needs the same key file.

The sealed blob also holds the owner, name, prefix, username and access key it was made for,
and opening it checks them: someone who can write the database but lacks the key cannot move a
secret to another user, or point it at another prefix (a host they control).

A missing or wrong key is no reason to refuse starting: it is a :class:`CredentialKeyError`
when a credential is saved or used, and listing or deleting credentials still works.

Messages never hold a secret value, whatever was wrong with it.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # imported where used: cryptography costs ~0.25 s at every CLI start
    from cryptography.fernet import Fernet

from toolferry.domain.errors import InvalidTask, ToolferryError
from toolferry.storage.base import Credential
from toolferry.store.credentials import CredentialStore, StoredCredential

__all__ = [
    "HEADER_NAME_PATTERN",
    "MAX_HEADERS",
    "MAX_PREFIX",
    "MAX_SECRET",
    "MAX_TEXT",
    "NAME_PATTERN",
    "SECRET_KINDS",
    "CredentialInfo",
    "CredentialKey",
    "CredentialKeyError",
    "CredentialService",
    "InvalidCredential",
    "check_name",
    "normalise_prefix",
]

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# RFC 9110 token: what a header field name may be.
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$"
MAX_PREFIX = 2048
MAX_TEXT = 256  # username, access key
MAX_SECRET = 16384  # a session token or a JWT can take a few kB
MAX_HEADERS = 32
# Which secrets a credential can hold besides header values, in the order listings show them.
SECRET_KINDS = ("password", "token", "secret_key", "session_token")
# Headers that frame or route the request: set by the transfer itself, never by a credential.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "trailer"}
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_PREFIX_HELP = "e.g. https://host/path/, s3://bucket/ or webdav://host/dav/"


class InvalidCredential(InvalidTask):
    """A credential breaks a rule; ``field`` names what (the API answers 400). The message
    never repeats a secret value."""


class CredentialKeyError(ToolferryError):
    """The key that seals stored credentials is missing, unreadable, or not the one they were
    sealed with: no credential can be saved or used until it is restored."""


@dataclass(frozen=True, kw_only=True)
class CredentialInfo:
    """What anyone may see of a credential: everything but the secret values."""

    name: str
    prefix: str
    username: str | None
    access_key: str | None
    secrets: tuple[str, ...]  # which of SECRET_KINDS are set
    headers: tuple[str, ...]  # header names; their values are secret
    created_at: datetime
    updated_at: datetime


def _invalid_token() -> type[Exception]:
    from cryptography.fernet import InvalidToken

    return InvalidToken


def _info(record: StoredCredential) -> CredentialInfo:
    return CredentialInfo(
        name=record.name,
        prefix=record.prefix,
        username=record.username,
        access_key=record.access_key,
        secrets=record.secret_kinds,
        headers=record.header_names,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


# -- validation (pure: the CLI checks with it too before asking for secrets) ------------------


def check_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise InvalidCredential(
            "name",
            "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def normalise_prefix(prefix: str) -> str:
    """``prefix`` with its scheme and host in lower case and at least "/" as its path.

    A prefix must end its host: "https://example.org" would also match
    "https://example.org.evil.test/", so it becomes "https://example.org/".
    """
    if not prefix:
        raise InvalidCredential(
            "prefix", f"required: the URLs the credential is for, {_PREFIX_HELP}"
        )
    if len(prefix) > MAX_PREFIX:
        raise InvalidCredential("prefix", f"must be at most {MAX_PREFIX} characters")
    if _CONTROL.search(prefix) or " " in prefix:
        raise InvalidCredential("prefix", "must not contain spaces or control characters")
    try:
        parts = urlsplit(prefix)
        parts.port  # noqa: B018 - raises on a port that is no number
    except ValueError as exc:
        raise InvalidCredential("prefix", f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if not _SCHEME.fullmatch(scheme) or not prefix[len(scheme) :].startswith("://"):
        raise InvalidCredential("prefix", f"must be a URL with a scheme and a host, {_PREFIX_HELP}")
    if "@" in parts.netloc:
        # The prefix is shown in every listing; a password inside it would be too.
        raise InvalidCredential(
            "prefix", "must not hold a user name or password: give them as their own fields"
        )
    if not parts.hostname:
        raise InvalidCredential("prefix", f"must name a host (or bucket), {_PREFIX_HELP}")
    if parts.query or parts.fragment or "?" in prefix or "#" in prefix:
        raise InvalidCredential("prefix", "must not have a query or a fragment")
    normal = f"{scheme}://{parts.netloc.lower()}{parts.path or '/'}"
    if len(normal) > MAX_PREFIX:
        raise InvalidCredential("prefix", f"must be at most {MAX_PREFIX} characters")
    return normal


def _check_text(field: str, value: str | None, limit: int) -> None:
    if value is None:
        return
    if not value:
        raise InvalidCredential(field, "must not be empty (leave it out instead)")
    if len(value) > limit:
        raise InvalidCredential(field, f"must be at most {limit} characters")
    if _CONTROL.search(value):
        raise InvalidCredential(field, "must not contain control characters")


def _validated(name: str, credential: Credential) -> Credential:
    check_name(name)
    prefix = normalise_prefix(credential.prefix)
    _check_text("username", credential.username, MAX_TEXT)
    _check_text("access_key", credential.access_key, MAX_TEXT)
    for kind in SECRET_KINDS:
        _check_text(kind, getattr(credential, kind), MAX_SECRET)
    if len(credential.headers) > MAX_HEADERS:
        raise InvalidCredential("headers", f"at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    for header, value in credential.headers.items():
        if not re.fullmatch(HEADER_NAME_PATTERN, header):
            raise InvalidCredential(
                "headers", "a header name must be 1 to 256 letters, digits or !#$%&'*+.^_`|~-"
            )
        if header.lower() in _RESERVED_HEADERS:
            raise InvalidCredential(
                f"headers.{header}", "is set by the transfer itself, not by a credential"
            )
        if header.lower() in seen:
            raise InvalidCredential(f"headers.{header}", "is given twice (names ignore case)")
        seen.add(header.lower())
        _check_text(f"headers.{header}", value, MAX_SECRET)
    if (credential.access_key is None) != (credential.secret_key is None):
        raise InvalidCredential("secret_key", "access_key and secret_key go together")
    if credential.session_token is not None and credential.secret_key is None:
        raise InvalidCredential("session_token", "needs access_key and secret_key")
    if credential.username is None and not _secret_kinds(credential) and not credential.headers:
        raise InvalidCredential(
            "", "give at least a username, password, token, secret_key or header"
        )
    return Credential(
        prefix=prefix,
        username=credential.username,
        password=credential.password,
        token=credential.token,
        access_key=credential.access_key,
        secret_key=credential.secret_key,
        session_token=credential.session_token,
        headers=dict(credential.headers),
    )


def _secret_kinds(credential: Credential) -> tuple[str, ...]:
    return tuple(kind for kind in SECRET_KINDS if getattr(credential, kind) is not None)


# -- the key ----------------------------------------------------------------------------------


class CredentialKey:
    """The Fernet key that seals credentials: given as bytes, or kept in a file that is made
    (mode 0600) the first time a credential is saved. Read lazily: a bad key is an error when
    it is needed, not when the hub starts."""

    def __init__(self, key: bytes | Path) -> None:
        self._key = key
        self._fernet: Fernet | None = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return str(self._key) if isinstance(self._key, Path) else "the configured key"

    def missing(self) -> bool:
        """Whether the next :meth:`fernet` with ``create`` would make a new key file."""
        with self._lock:
            return self._fernet is None and isinstance(self._key, Path) and not self._key.exists()

    def fernet(self, *, create: bool) -> Fernet:
        """The cipher; ``create``: make the key file when there is none."""
        with self._lock:
            if self._fernet is None:
                self._fernet = self._load(create)
            return self._fernet

    def _load(self, create: bool) -> Fernet:
        raw = self._key if isinstance(self._key, bytes) else self._read(self._key, create)
        try:
            from cryptography.fernet import Fernet

            return Fernet(raw.strip())
        except ValueError:
            raise CredentialKeyError(
                f"{self.where} is no Fernet key (32 bytes in URL-safe base64, 44 characters)"
            ) from None

    @staticmethod
    def _read(path: Path, create: bool) -> bytes:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            if not create:
                raise CredentialKeyError(
                    f"the key of the stored storage credentials, {path}, is missing: restore it "
                    "from a backup, or delete the credentials and add them again"
                ) from None
            return CredentialKey._create(path)
        except OSError as exc:
            raise CredentialKeyError(f"cannot read the credential key {path}: {exc}") from None
        if path.stat().st_mode & 0o077:
            log.warning("%s can be read by other users: chmod 600 it", path)
        return raw

    @staticmethod
    def _create(path: Path) -> bytes:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
            try:
                with os.fdopen(fd, "wb") as file:
                    from cryptography.fernet import Fernet

                    file.write(Fernet.generate_key() + b"\n")
                    file.flush()
                    os.fsync(file.fileno())
                # A link appears complete or not at all, and never replaces a key that another
                # process made in the meantime.
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                os.unlink(tmp)
            log.info("made the credential key %s; back it up with the database", path)
            return path.read_bytes()
        except OSError as exc:
            raise CredentialKeyError(f"cannot make the credential key {path}: {exc}") from None


# -- the service ------------------------------------------------------------------------------


_BOUND = ("owner", "name", "prefix", "username", "access_key")  # sealed along with the secrets


class CredentialService:
    """Users' storage credentials; :meth:`credentials_of` makes it a
    :class:`toolferry.security.credentials.UserCredentials`."""

    def __init__(self, store: CredentialStore, key: bytes | Path | CredentialKey) -> None:
        self._store = store
        self._key = key if isinstance(key, CredentialKey) else CredentialKey(key)

    def put(self, owner: str, name: str, credential: Credential) -> tuple[CredentialInfo, bool]:
        """Create or replace ``owner``'s credential ``name``; True when it is new. Raises
        InvalidCredential, or CredentialKeyError when the key cannot be had."""
        clean = _validated(name, credential)
        if self._key.missing() and self._store.any_stored():
            # The credentials sealed with the lost key stay unusable (each says so when used)
            # until that key is back or they are saved again; new ones get a new key.
            log.warning(
                "the credential key %s is missing but credentials sealed with it are stored: "
                "making a new key; restore the old one to use them again",
                self._key.where,
            )
        fernet = self._key.fernet(create=True)
        payload: dict[str, Any] = {
            "owner": owner,
            "name": name,
            **{f.name: getattr(clean, f.name) for f in fields(Credential)},
            "headers": dict(clean.headers),
        }
        now = datetime.now(UTC)
        record = StoredCredential(
            owner=owner,
            name=name,
            prefix=clean.prefix,
            username=clean.username,
            access_key=clean.access_key,
            secret_kinds=_secret_kinds(clean),
            header_names=tuple(clean.headers),
            sealed=fernet.encrypt(json.dumps(payload).encode()).decode(),
            created_at=now,
            updated_at=now,
        )
        stored, created = self._store.put(record)
        return _info(stored), created

    def list(self, owner: str) -> builtins.list[CredentialInfo]:
        """``owner``'s credentials by name, without their secrets (needs no key)."""
        return [_info(record) for record in self._store.list(owner)]

    def delete(self, owner: str, name: str) -> bool:
        return self._store.delete(owner, name)

    def credentials_of(self, owner: str) -> builtins.list[Credential]:
        """``owner``'s credentials with their secrets, for the transfers of one task attempt."""
        records = self._store.list(owner)
        if not records:
            return []
        fernet = self._key.fernet(create=False)
        return [self._open(fernet, record) for record in records]

    def _open(self, fernet: Fernet, record: StoredCredential) -> Credential:
        what = f"storage credential {record.name!r} of {record.owner}"
        try:
            payload = json.loads(fernet.decrypt(record.sealed.encode()))
        except _invalid_token():
            raise CredentialKeyError(
                f"cannot decrypt the {what}: {self._key.where} is not the key it was saved "
                "with; restore that key, or delete the credential and add it again"
            ) from None
        row = {
            "owner": record.owner,
            "name": record.name,
            "prefix": record.prefix,
            "username": record.username,
            "access_key": record.access_key,
        }
        if not isinstance(payload, Mapping) or any(payload.get(k) != row[k] for k in _BOUND):
            raise CredentialKeyError(
                f"the {what} does not match what was encrypted: its database row was changed "
                "behind toolferry's back; delete it and add it again"
            )
        return Credential(
            prefix=record.prefix,
            username=record.username,
            password=payload.get("password"),
            token=payload.get("token"),
            access_key=record.access_key,
            secret_key=payload.get("secret_key"),
            session_token=payload.get("session_token"),
            headers=dict(payload.get("headers") or {}),
        )
