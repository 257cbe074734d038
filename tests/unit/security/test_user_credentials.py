"""CredentialService: validation, replace/delete, owner isolation, the key, and precedence."""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import update

from toolferry.domain.errors import InvalidTask
from toolferry.security.credentials import CredentialResolver
from toolferry.security.user_credentials import (
    CredentialKey,
    CredentialKeyError,
    CredentialService,
    InvalidCredential,
    normalise_prefix,
)
from toolferry.storage.base import Credential
from toolferry.store.credentials import SqlCredentialStore
from toolferry.store.db import Database
from toolferry.store.tables import storage_credentials

SECRET = "s3cr3t-Value-42"
S3 = Credential(prefix="s3://lab/", access_key="AKIA1", secret_key=SECRET)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield database
    database.close()


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "credentials.key"


@pytest.fixture
def service(db: Database, key_path: Path) -> CredentialService:
    return CredentialService(SqlCredentialStore(db), key_path)


def cred(prefix: str = "https://dav.example.org/", **fields: Any) -> Credential:
    return Credential(prefix=prefix, **fields)


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("s3://lab", "s3://lab/"),
        ("S3://Lab/Data/", "s3://lab/Data/"),
        ("https://Example.org:8443", "https://example.org:8443/"),
        ("https://example.org/dav/home", "https://example.org/dav/home"),
        ("webdavs://[::1]:8080/x/", "webdavs://[::1]:8080/x/"),
    ],
)
def test_prefixes_are_normalised(given: str, expected: str) -> None:
    assert normalise_prefix(given) == expected


def test_a_bare_host_prefix_does_not_match_a_longer_host_name() -> None:
    prefix = normalise_prefix("https://example.org")
    assert not cred(prefix).applies_to("https://example.org.evil.test/x")
    assert cred(prefix).applies_to("https://example.org/x")


@pytest.mark.parametrize(
    ("name", "credential", "field", "needle"),
    [
        ("", cred(token=SECRET), "name", "1 to 64"),
        ("a" * 65, cred(token=SECRET), "name", "1 to 64"),
        ("-x", cred(token=SECRET), "name", "starting with a letter"),
        ("a/b", cred(token=SECRET), "name", "letters, digits"),
        ("ok", cred("", token=SECRET), "prefix", "required"),
        ("ok", cred("example.org/x", token=SECRET), "prefix", "scheme and a host"),
        ("ok", cred("/data/", token=SECRET), "prefix", "scheme and a host"),
        ("ok", cred("file:///data/", token=SECRET), "prefix", "host"),
        ("ok", cred("https://", token=SECRET), "prefix", "host"),
        ("ok", cred("https://u:pw@host/", token=SECRET), "prefix", "user name or password"),
        ("ok", cred("https://host/?a=1", token=SECRET), "prefix", "query"),
        ("ok", cred("https://host/#f", token=SECRET), "prefix", "query or a fragment"),
        ("ok", cred("https://host/a b", token=SECRET), "prefix", "spaces"),
        ("ok", cred("https://host:99999/", token=SECRET), "prefix", "not a valid URL"),
        ("ok", cred("https://[::1/", token=SECRET), "prefix", "not a valid URL"),
        ("ok", cred("https://h/" + "x" * 2048, token=SECRET), "prefix", "2048"),
        ("ok", cred(), "", "at least"),
        ("ok", cred(access_key="AKIA1"), "secret_key", "go together"),
        ("ok", cred(secret_key=SECRET), "secret_key", "go together"),
        ("ok", cred(token=SECRET, session_token=SECRET), "session_token", "needs access_key"),
        ("ok", cred(username=""), "username", "must not be empty"),
        ("ok", cred(username="u", password=""), "password", "must not be empty"),
        ("ok", cred(username="u\nx"), "username", "control characters"),
        ("ok", cred(token=SECRET + "\r\nX-Evil: 1"), "token", "control characters"),
        ("ok", cred(token=SECRET * 2000), "token", "at most 16384"),
        ("ok", cred(username="u" * 257), "username", "at most 256"),
        ("ok", cred(headers={"Bad Name": SECRET}), "headers", "header name"),
        ("ok", cred(headers={"": SECRET}), "headers", "header name"),
        ("ok", cred(headers={"Host": SECRET}), "headers.Host", "set by the transfer"),
        ("ok", cred(headers={"X-K": SECRET, "x-k": SECRET}), "headers.x-k", "twice"),
        ("ok", cred(headers={"X-K": ""}), "headers.X-K", "must not be empty"),
        ("ok", cred(headers={"X-K": SECRET + "\n"}), "headers.X-K", "control"),
        ("ok", cred(headers={f"X-{i}": SECRET for i in range(33)}), "headers", "at most 32"),
    ],
)
def test_a_credential_that_breaks_a_rule_is_refused_without_echoing_secrets(
    service: CredentialService,
    key_path: Path,
    name: str,
    credential: Credential,
    field: str,
    needle: str,
) -> None:
    with pytest.raises(InvalidCredential) as caught:
        service.put("alice", name, credential)
    assert isinstance(caught.value, InvalidTask)  # so that the API answers 400
    assert caught.value.field == field
    assert needle in str(caught.value)
    assert SECRET not in str(caught.value)
    assert service.list("alice") == []
    assert not key_path.exists()  # nothing was sealed


@pytest.mark.parametrize(
    "credential",
    [
        cred(username="anonymous"),
        cred(username="u", password=SECRET),
        cred(token=SECRET),
        cred(headers={"X-Api-Key": SECRET}),
        S3,
        replace(S3, session_token="tok"),
    ],
)
def test_each_kind_of_credential_is_accepted(
    service: CredentialService, credential: Credential
) -> None:
    service.put("alice", "c", credential)
    (stored,) = service.credentials_of("alice")
    assert stored == credential


# -- create, replace, list, delete ------------------------------------------------------------


def test_put_creates_then_replaces_every_field(service: CredentialService) -> None:
    info, created = service.put(
        "alice", "lab", replace(S3, prefix="S3://LAB", headers={"X-A": "a-value"})
    )
    assert created
    assert (info.name, info.prefix, info.access_key) == ("lab", "s3://lab/", "AKIA1")
    assert (info.secrets, info.headers) == (("secret_key",), ("X-A",))
    assert info.created_at == info.updated_at

    info2, created = service.put("alice", "lab", cred("https://h/", username="u", token="t2"))
    assert not created
    assert info2.created_at == info.created_at and info2.updated_at > info.updated_at
    assert (info2.prefix, info2.username, info2.access_key) == ("https://h/", "u", None)
    assert (info2.secrets, info2.headers) == (("token",), ())
    # What was left out is gone, not kept from before.
    assert service.credentials_of("alice") == [cred("https://h/", username="u", token="t2")]


def test_list_shows_no_secret(service: CredentialService) -> None:
    service.put(
        "alice",
        "all",
        Credential(
            prefix="s3://b/",
            username="u",
            password=SECRET + "p",
            token=SECRET + "t",
            access_key="AKIA1",
            secret_key=SECRET + "s",
            session_token=SECRET + "st",
            headers={"X-Api-Key": SECRET + "h"},
        ),
    )
    (info,) = service.list("alice")
    assert info.secrets == ("password", "token", "secret_key", "session_token")
    assert info.headers == ("X-Api-Key",)
    assert SECRET not in repr(info)
    assert SECRET not in repr(service.credentials_of("alice"))  # Credential hides them too


def test_delete(service: CredentialService) -> None:
    service.put("alice", "lab", S3)
    assert not service.delete("alice", "other")
    assert service.delete("alice", "lab")
    assert not service.delete("alice", "lab")
    assert service.list("alice") == [] and service.credentials_of("alice") == []


def test_owners_see_and_get_only_their_own(service: CredentialService) -> None:
    service.put("alice", "lab", S3)
    service.put("bob", "lab", replace(S3, secret_key="bobs-secret"))
    service.put("bob", "dav", cred(username="bob", password="pw"))
    assert [i.name for i in service.list("alice")] == ["lab"]
    assert [i.name for i in service.list("bob")] == ["dav", "lab"]
    assert service.credentials_of("alice") == [S3]
    assert {c.secret_key for c in service.credentials_of("bob")} == {None, "bobs-secret"}
    assert not service.delete("alice", "dav")
    assert service.credentials_of("carol") == []


# -- the key ----------------------------------------------------------------------------------


def test_the_key_file_is_made_0600_with_the_first_credential(
    service: CredentialService, key_path: Path
) -> None:
    assert service.list("alice") == [] and service.credentials_of("alice") == []
    assert not key_path.exists()  # reading needs no key while nothing is stored
    service.put("alice", "lab", S3)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    Fernet(key_path.read_bytes().strip())  # a real Fernet key
    assert [p.name for p in key_path.parent.iterdir()] == ["credentials.key"]  # no temp file


def test_a_service_with_key_bytes_and_a_restart(db: Database) -> None:
    key = Fernet.generate_key()
    CredentialService(SqlCredentialStore(db), key).put("alice", "lab", S3)
    assert CredentialService(SqlCredentialStore(db), key).credentials_of("alice") == [S3]


def test_a_wrong_key_is_a_clear_error_when_a_credential_is_used(
    db: Database, key_path: Path, service: CredentialService
) -> None:
    service.put("alice", "lab", S3)
    key_path.write_bytes(Fernet.generate_key())
    restarted = CredentialService(SqlCredentialStore(db), key_path)  # no error at start
    assert [i.name for i in restarted.list("alice")] == ["lab"]  # listing needs no key
    with pytest.raises(CredentialKeyError, match=f"cannot decrypt.*'lab'.*{key_path}"):
        restarted.credentials_of("alice")
    assert restarted.delete("alice", "lab")
    assert restarted.credentials_of("alice") == []


def test_a_missing_key_is_a_clear_error_and_a_new_one_serves_new_credentials(
    db: Database, key_path: Path, service: CredentialService, caplog: pytest.LogCaptureFixture
) -> None:
    service.put("alice", "lab", S3)
    key_path.unlink()
    restarted = CredentialService(SqlCredentialStore(db), key_path)
    with pytest.raises(CredentialKeyError, match=f"{key_path}, is missing: restore it"):
        restarted.credentials_of("alice")
    assert not key_path.exists()  # using a credential never makes a key
    with caplog.at_level(logging.WARNING):
        restarted.put("bob", "dav", cred(username="u", password="pw"))
    assert "credential key" in caplog.text and "missing" in caplog.text
    assert restarted.credentials_of("bob") == [cred(username="u", password="pw")]
    with pytest.raises(CredentialKeyError, match="not the key it was saved with"):
        restarted.credentials_of("alice")


@pytest.mark.parametrize("content", [b"", b"not a key\n", b"x" * 44])
def test_a_key_file_without_a_key_is_a_clear_error(
    db: Database, key_path: Path, content: bytes
) -> None:
    key_path.parent.mkdir(parents=True)
    key_path.write_bytes(content)
    key_path.chmod(0o600)
    service = CredentialService(SqlCredentialStore(db), key_path)
    with pytest.raises(CredentialKeyError, match="is no Fernet key"):
        service.put("alice", "lab", S3)
    with pytest.raises(CredentialKeyError, match="is no Fernet key"):
        CredentialService(SqlCredentialStore(db), b"short").put("alice", "lab", S3)


def test_a_key_readable_by_others_is_warned_about(
    db: Database, key_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_path.parent.mkdir(parents=True)
    key_path.write_bytes(Fernet.generate_key())
    key_path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        CredentialService(SqlCredentialStore(db), key_path).put("alice", "lab", S3)
    assert "chmod 600" in caplog.text


def test_processes_making_the_key_at_once_agree_on_one(key_path: Path) -> None:
    keys = [CredentialKey(key_path) for _ in range(8)]
    barrier = threading.Barrier(len(keys))
    made: list[bytes] = []

    def make(key: CredentialKey) -> None:
        barrier.wait()
        made.append(key.fernet(create=True).encrypt(b"x"))

    threads = [threading.Thread(target=make, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = Fernet(key_path.read_bytes().strip())
    assert [final.decrypt(token) for token in made] == [b"x"] * len(keys)


def test_a_tampered_row_is_refused(db: Database, service: CredentialService) -> None:
    """Whoever can write the database but lacks the key cannot redirect a secret."""
    service.put("alice", "lab", S3)
    with db.write() as conn:
        conn.execute(update(storage_credentials).values(prefix="https://evil.test/"))
    with pytest.raises(CredentialKeyError, match="changed behind toolferry's back"):
        service.credentials_of("alice")
    with db.write() as conn:
        conn.execute(update(storage_credentials).values(prefix="s3://lab/", owner="mallory"))
    with pytest.raises(CredentialKeyError, match="changed"):
        service.credentials_of("mallory")


# -- with the lead's resolver -----------------------------------------------------------------


def test_the_resolver_takes_the_longest_prefix_and_the_users_on_a_tie(
    service: CredentialService,
) -> None:
    site = [
        Credential(prefix="s3://", access_key="SITE-ALL", secret_key="x"),
        Credential(prefix="s3://lab/", access_key="SITE-LAB", secret_key="x"),
        Credential(prefix="s3://lab/shared/deep/", access_key="SITE-DEEP", secret_key="x"),
    ]
    service.put("alice", "lab", replace(S3, access_key="ALICE-LAB"))
    service.put("alice", "shared", replace(S3, prefix="s3://lab/shared/", access_key="ALICE-SH"))
    service.put("bob", "other", replace(S3, prefix="s3://other/", access_key="BOB"))
    lookup = CredentialResolver(site, service).for_owner("alice")

    def key_for(url: str) -> str | None:
        found = lookup(url)
        return None if found is None else found.access_key

    assert key_for("s3://lab/a.txt") == "ALICE-LAB"  # equal prefix: the user's
    assert key_for("s3://lab/shared/b.txt") == "ALICE-SH"  # longer user prefix
    assert key_for("s3://lab/shared/deep/c.txt") == "SITE-DEEP"  # longer site prefix
    assert key_for("s3://other/d.txt") == "SITE-ALL"  # never bob's
    assert key_for("https://example.org/") is None
    assert CredentialResolver(site, service).for_owner("bob")("s3://other/x") is not None
