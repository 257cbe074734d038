"""ftp:// URLs through fsspec's FTPFileSystem (the standard library's ftplib).

``ftp://[user[:password]@]host[:port]/path``, the path taken from the server's root, as most
servers and clients read it. The login is the credential's user name and password, else the
URL's, else anonymous. An upload is STORed under a temporary name in the target's directory and
then renamed over it (RNFR/RNTO), so readers never see half a file; missing directories are made
first (MKD). Validators are the size and modification time that MLSD (or LIST) reports, and the
``unique`` fact (the file's identity on the server) when given.
"""

from __future__ import annotations

import contextlib
import ftplib
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from fsspec.implementations.ftp import FTPFileSystem

from toolferry.storage.base import Credential
from toolferry.storage.integrity import CHUNK
from toolferry.storage.remote import Entry, Failure, FsspecStorage, SourceReader

__all__ = ["FtpStorage", "login"]

# https://www.rfc-editor.org/rfc/rfc959#section-4.2 and RFC 3659.
_TRANSIENT_4XX = {
    "421": "service not available",
    "425": "could not open a data connection",
    "426": "transfer aborted",
    "450": "file busy",
    "451": "local error on the server",
}


class FtpStorage(FsspecStorage):
    """Files on an FTP server (plain FTP; passive mode)."""

    schemes: tuple[str, ...] = ("ftp",)

    def refusal(self, url: str, *, write: bool) -> str | None:
        parts = urlsplit(url)
        if parts.scheme != "ftp":
            return "is not an ftp:// URL"
        if not parts.hostname:
            return "has no host (ftp://host/path)"
        try:
            parts.port  # noqa: B018 -- raises for a port that is not a number
        except ValueError:
            return "has an invalid port"
        if parts.query or parts.fragment:
            return "has a query or fragment; percent-encode '?' and '#' in file names"
        if any(c in unquote(parts.path) for c in "\r\n\0"):
            return "has a line break or NUL in its path"
        return None

    def path(self, url: str) -> str:
        return "/" + unquote(urlsplit(url).path).strip("/")

    @contextlib.contextmanager
    def connection(self, url: str, credential: Credential | None) -> Iterator[FTPFileSystem]:
        parts = urlsplit(url)
        user, password = login(url, credential)
        fs = FTPFileSystem(
            parts.hostname,
            port=parts.port or 21,
            username=user,  # none: anonymous
            password=password,
            timeout=self.timeout,
            encoding="utf-8",
            skip_instance_cache=True,
            use_listings_cache=False,
        )
        try:
            yield fs
        finally:
            with contextlib.suppress(*ftplib.all_errors):
                fs.ftp.quit()
            fs.ftp.close()

    def entry(self, info: Mapping[str, Any]) -> Entry:
        is_dir = info.get("type") == "directory"
        return Entry(
            path=str(info["name"]),
            is_dir=is_dir,
            size=int(info.get("size") or 0),
            etag=info.get("unique") or None,
            modified=info.get("modify") or None,
        )

    def download(self, fs: FTPFileSystem, path: str, write: Callable[[bytes], None]) -> int | None:
        ftp: ftplib.FTP = fs.ftp
        ftp.voidcmd("TYPE I")
        try:
            size = ftp.size(path)  # RFC 3659; lets a transfer cut short be noticed
        except ftplib.error_perm:
            size = None
        # Streamed from the data connection, unlike FTPFile, which RETRs once per block.
        conn = ftp.transfercmd(f"RETR {path}")
        try:
            with conn:
                while chunk := conn.recv(CHUNK):
                    write(chunk)
        except BaseException:
            _settle(ftp)
            raise
        ftp.voidresp()
        return size

    def upload(self, fs: FTPFileSystem, path: str, source: SourceReader) -> None:
        ftp: ftplib.FTP = fs.ftp
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd(f"STOR {path}")
        try:
            with conn:
                while chunk := source.read(CHUNK):
                    conn.sendall(chunk)
        except BaseException:
            _settle(ftp)
            raise
        ftp.voidresp()

    def replace(self, fs: FTPFileSystem, tmp: str, path: str) -> None:
        ftp: ftplib.FTP = fs.ftp
        try:
            ftp.rename(tmp, path)
        except ftplib.error_perm as refused:
            # Some servers will not rename over an existing file: make room, then rename.
            try:
                ftp.delete(path)
            except ftplib.error_perm:
                raise refused from None
            ftp.rename(tmp, path)

    def classify(self, exc: BaseException) -> Failure | None:
        if isinstance(exc, ftplib.error_perm | ftplib.error_temp):
            return _reply(str(exc))
        if isinstance(exc, ftplib.error_reply | ftplib.error_proto):
            return Failure(f"unexpected FTP reply: {exc}", True)
        if isinstance(exc, EOFError):
            return Failure("connection lost: the server closed the connection", True)
        return None


def login(url: str, credential: Credential | None) -> tuple[str | None, str | None]:
    """The user name and password to log in with: the credential's, else the URL's, else
    ``(None, None)`` for an anonymous login."""
    if credential is not None and credential.username is not None:
        return credential.username, credential.password
    parts = urlsplit(url)
    if parts.username is not None:
        return unquote(parts.username), unquote(parts.password or "")
    return None, None


def _reply(text: str) -> Failure:
    """What an FTP error reply (``"550 No such file"``) means."""
    code, _, message = text.partition(" ")
    said = f"FTP {code}: {message.strip()}" if message.strip() else f"FTP {code}"
    if code in ("530", "331", "332"):
        return Failure(f"login refused ({said}); check the user name and password")
    if code in ("452", "552"):
        return Failure(f"disk full ({said})")
    if code in _TRANSIENT_4XX:
        return Failure(f"{_TRANSIENT_4XX[code]} ({said})", True)
    if code == "550":
        lowered = message.lower()
        if "denied" in lowered or "permission" in lowered or "not allowed" in lowered:
            return Failure(f"access denied ({said})")
        return Failure(f"not found ({said})")
    if code == "553":
        return Failure(f"file name not allowed ({said})")
    if code == "532":
        return Failure(f"the server needs an account to store files ({said})")
    if code in ("500", "501", "502", "504"):
        return Failure(f"the server does not support this ({said})")
    return Failure(said, transient=code.startswith("4"))


def _settle(ftp: ftplib.FTP) -> None:
    """After a transfer broke off, read the server's reply to it (226 or 426), so that the
    next command on this connection gets its own reply."""
    with contextlib.suppress(*ftplib.all_errors):
        ftp.voidresp()
