"""The parts a site's workers need, built from settings: shared by the hub and by worker
processes that batch jobs start on compute nodes (``python -m toolferry.worker``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr

from toolferry.config import Settings
from toolferry.security.credentials import CredentialResolver, from_setting
from toolferry.security.user_credentials import CredentialService
from toolferry.storage.base import Storage
from toolferry.storage.cache import InputCache
from toolferry.storage.file import FileStorage
from toolferry.storage.ftp import FtpStorage
from toolferry.storage.http import HttpStorage
from toolferry.storage.hubfiles import HubFileStorage, HubFileStore
from toolferry.storage.router import StorageRouter
from toolferry.storage.s3 import S3Storage
from toolferry.storage.webdav import WebdavStorage
from toolferry.store.credentials import SqlCredentialStore
from toolferry.store.db import Database
from toolferry.worker.transfers import Transfers


def hub_files(s: Settings) -> HubFileStore:
    """The hub's file store (hub:// URLs): what clients upload for their tasks."""
    return HubFileStore(s.data_dir / "files")


def storage_router(
    s: Settings, files: HubFileStore, extra: Sequence[Storage] = ()
) -> StorageRouter:
    """Every storage this hub's site serves, configured from the settings (``extra``: more,
    e.g. a data site's datasets)."""
    attempts, timeout = s.transfer_attempts, s.transfer_timeout_s
    backoff = tuple(0.5 * 2**i for i in range(attempts - 1))
    claimed = {scheme for storage in extra for scheme in storage.schemes}
    built_in: list[Storage] = [
        FileStorage(s.allowed_dirs),
        HttpStorage(timeout=timeout, backoff=backoff),
        S3Storage(s.s3_endpoint_url, s.s3_region, timeout=timeout, attempts=attempts),
        WebdavStorage(timeout=timeout, attempts=attempts),
        FtpStorage(timeout=timeout, attempts=attempts),
        HubFileStorage(files),
    ]
    # An extra storage replaces the built-in one of its scheme (an agent's hub:// is remote).
    return StorageRouter([*extra, *(b for b in built_in if not set(b.schemes) & claimed)])


def transfers(s: Settings, files: HubFileStore, extra: Sequence[Storage] = ()) -> Transfers:
    return Transfers(
        router=storage_router(s, files, extra),
        cache=InputCache(s.effective_cache_dir, max_bytes=s.cache_max_bytes),
        parallelism=s.transfer_parallelism,
    )


def user_credentials(s: Settings, db: Database) -> CredentialService:
    """Users' own storage secrets, sealed with a key kept beside (not in) the database."""
    return CredentialService(SqlCredentialStore(db), s.data_dir / "credentials.key")


def credential_resolver(s: Settings, users: CredentialService) -> CredentialResolver:
    return CredentialResolver([from_setting(c) for c in s.storage_credentials], users)


def settings_values(s: Settings) -> dict[str, Any]:
    """The settings as JSON values, secrets included, to rebuild them with ``Settings(**v)``
    in a worker process (so handle the result as a secret)."""
    return _plain(s.model_dump())  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)  # paths
