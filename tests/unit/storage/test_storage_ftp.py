"""ftp:// URLs (storage/ftp.py): URL shape, logins, listings and reply codes, offline.

Transfers against a real FTP server are in tests/integration/storage.
"""

from __future__ import annotations

import ftplib

import pytest

from toolferry.storage.base import Credential, Operation
from toolferry.storage.ftp import FtpStorage, login
from toolferry.storage.redact import redact
from toolferry.storage.remote import Failure


@pytest.fixture
def ftp() -> FtpStorage:
    return FtpStorage(timeout=4, attempts=2)


def test_declares_every_operation(ftp: FtpStorage) -> None:
    assert ftp.schemes == ("ftp",)
    assert ftp.operations == frozenset(Operation)


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("ftp://ftp.example.org/pub/data.csv", None),
        ("ftp://user:pw@127.0.0.1:2121/a%20b", None),
        ("ftp://host", None),
        ("sftp://host/x", "is not an ftp:// URL"),
        ("ftp:///x", "has no host (ftp://host/path)"),
        ("ftp://host:99999/x", "has an invalid port"),
        ("ftp://host/x;type=i?y", "has a query or fragment"),
        ("ftp://host/x%0D%0ADELE%20y", "has a line break or NUL in its path"),
    ],
)
def test_supports(ftp: FtpStorage, url: str, refusal: str | None) -> None:
    answer = ftp.supports(url, write=True)
    if refusal is None:
        assert answer is None
    else:
        assert answer is not None and answer.startswith(f"{redact(url)} {refusal}")


def test_a_refusal_hides_the_password(ftp: FtpStorage) -> None:
    answer = ftp.supports("sftp://bob:hunter2@host/x", write=False)
    assert answer == "sftp://***@host/x is not an ftp:// URL"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("ftp://host/pub/a%20b%C3%BC.txt", "/pub/a bü.txt"),
        ("ftp://host/pub/", "/pub"),
        ("ftp://host", "/"),
        ("ftp://host/", "/"),
    ],
)
def test_path_is_from_the_servers_root(ftp: FtpStorage, url: str, path: str) -> None:
    assert ftp.path(url) == path


def test_login_from_the_credential_first() -> None:
    credential = Credential(prefix="ftp://", username="alice", password="pw-alice")
    assert login("ftp://bob:pw-bob@host/x", credential) == ("alice", "pw-alice")


def test_login_from_the_url_when_the_credential_has_no_user() -> None:
    credential = Credential(prefix="ftp://", token="unused-token")
    assert login("ftp://b%40b:p%3Aw@host/x", credential) == ("b@b", "p:w")
    assert login("ftp://bob@host/x", None) == ("bob", "")


def test_anonymous_login_otherwise() -> None:
    assert login("ftp://host/x", None) == (None, None)


def test_entry_from_mlsd_facts(ftp: FtpStorage) -> None:
    entry = ftp.entry(
        {
            "name": "/pub/f.txt",
            "type": "file",
            "size": 12,
            "modify": "20240506071011",
            "unique": "fe00g21e5b6",
        }
    )
    assert (entry.path, entry.is_dir, entry.size) == ("/pub/f.txt", False, 12)
    assert (entry.etag, entry.modified) == ("fe00g21e5b6", "20240506071011")


def test_entry_from_a_list_line_without_unique(ftp: FtpStorage) -> None:
    entry = ftp.entry({"name": "/pub", "type": "directory", "size": 0, "modify": "May 06 07:10"})
    assert (entry.is_dir, entry.etag, entry.modified) == (True, None, "May 06 07:10")


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (
            ftplib.error_perm("530 Login incorrect."),
            Failure("login refused (FTP 530: Login incorrect.); check the user name and password"),
        ),
        (
            ftplib.error_perm("550 No such file or directory."),
            Failure("not found (FTP 550: No such file or directory.)"),
        ),
        (
            ftplib.error_perm("550 Permission denied."),
            Failure("access denied (FTP 550: Permission denied.)"),
        ),
        (ftplib.error_perm("552 Quota exceeded."), Failure("disk full (FTP 552: Quota exceeded.)")),
        (ftplib.error_temp("452 Disk full."), Failure("disk full (FTP 452: Disk full.)")),
        (
            ftplib.error_temp("421 Too many connections."),
            Failure("service not available (FTP 421: Too many connections.)", True),
        ),
        (
            ftplib.error_temp("426 Connection closed; transfer aborted."),
            Failure("transfer aborted (FTP 426: Connection closed; transfer aborted.)", True),
        ),
        (ftplib.error_temp("450"), Failure("file busy (FTP 450)", True)),
        (
            ftplib.error_perm("553 Bad file name."),
            Failure("file name not allowed (FTP 553: Bad file name.)"),
        ),
        (
            ftplib.error_perm("502 Command not implemented."),
            Failure("the server does not support this (FTP 502: Command not implemented.)"),
        ),
        (ftplib.error_temp("499 Odd."), Failure("FTP 499: Odd.", True)),
        (ftplib.error_perm("599 Odd."), Failure("FTP 599: Odd.")),
        (
            ftplib.error_reply("226 Transfer complete."),
            Failure("unexpected FTP reply: 226 Transfer complete.", True),
        ),
        (EOFError(), Failure("connection lost: the server closed the connection", True)),
    ],
)
def test_replies(ftp: FtpStorage, error: Exception, failure: Failure) -> None:
    assert ftp.classify(error) == failure


def test_fsspecs_not_found_is_read_through_to_the_reply(ftp: FtpStorage) -> None:
    try:
        try:
            raise ftplib.error_temp("421 Service not available, closing control connection.")
        except ftplib.error_temp as exc:
            raise FileNotFoundError("/x") from exc
    except FileNotFoundError as translated:
        failure = ftp.failure(translated)
    assert failure.transient  # not "not found": the server was going away


def test_a_connection_refused_is_transient(ftp: FtpStorage) -> None:
    assert ftp.failure(ConnectionRefusedError(111, "Connection refused")) == Failure(
        "could not connect: connection refused", True
    )


def test_a_password_in_a_reply_is_scrubbed(ftp: FtpStorage) -> None:
    error = ftplib.error_perm("530 Login incorrect for bob/hunter22.")
    message = str(ftp.error("ftp://bob:hunter22@host/x", error, None))
    assert message == (
        "ftp://***@host/x: login refused (FTP 530: Login incorrect for bob/***.); "
        "check the user name and password"
    )
