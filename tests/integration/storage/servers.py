"""Real storage servers on 127.0.0.1 for the storage tests: WebDAV, S3 and FTP.

- :class:`WebdavServer`: wsgidav on cheroot, in a thread of the test process (starts in ms).
- :class:`MotoServer`: moto's S3 in a child process, served by cheroot, not ``moto_server``:
  werkzeug (under ``moto_server``) adds a second ``Server`` header, which aiohttp >= 3.14 (under
  s3fs) rejects. Authentication is enforced: :meth:`MotoServer.credential` has the only key.
- :class:`FtpServer`: pyftpdlib in a thread: anonymous login (writable) and one user.

Each is a context manager that waits until the server answers and, on exit, stops it and joins
its threads or reaps its process. Run as ``python servers.py moto PORT`` this file is the child
process of :class:`MotoServer`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = [
    "FtpServer",
    "MotoServer",
    "ServerMissing",
    "WebdavServer",
    "free_port",
    "refused_port",
]

_HOST = "127.0.0.1"
_START_TIMEOUT = 60.0


class ServerMissing(RuntimeError):
    """A server package is not installed; the message says how to install it."""


def _need(module: str, package: str) -> None:
    try:
        __import__(module)
    except ImportError as exc:
        raise ServerMissing(
            f"{package} is not installed: run `.venv/bin/pip install -e '.[test]'`"
        ) from exc


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
    return port


refused_port = free_port  # nothing listens there: connecting is refused


def _wait_until(answers: Callable[[], bool], what: str, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while not answers():
        if not alive():
            raise RuntimeError(f"{what} exited before it answered")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {_START_TIMEOUT:g}s")
        time.sleep(0.05)


def _connects(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=1):
            return True
    except OSError:
        return False


class _Server:
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class WebdavServer(_Server):
    """wsgidav serving ``root`` at ``/``; anonymous unless ``users`` (name → password) is given,
    then HTTP basic authentication is required."""

    def __init__(self, root: Path, users: dict[str, str] | None = None) -> None:
        self.root = root
        self.users = dict(users or {})
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``webdav://127.0.0.1:PORT`` (the storage maps webdav:// to http://)."""
        return f"webdav://{_HOST}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    def start(self) -> None:
        _need("wsgidav", "wsgidav")
        _need("cheroot", "cheroot")
        from cheroot import wsgi
        from wsgidav.wsgidav_app import WsgiDAVApp

        user_mapping: dict[str, Any] = (
            {"*": {name: {"password": pw} for name, pw in self.users.items()}}
            if self.users
            else {"*": True}
        )
        app = WsgiDAVApp(
            {
                "host": _HOST,
                "port": 0,
                "provider_mapping": {"/": str(self.root)},
                "simple_dc": {"user_mapping": user_mapping},
                "http_authenticator": {
                    "accept_basic": True,
                    "accept_digest": False,
                    "default_to_digest": False,
                },
                "dir_browser": {"enable": False},
                "verbose": 0,
                "logging": {"enable": False},
            }
        )
        self._server = wsgi.Server((_HOST, 0), app, numthreads=4)
        self._server.prepare()
        self.port = self._server.bind_addr[1]
        self._thread = threading.Thread(target=self._server.serve, name="webdav-server")
        self._thread.start()
        _wait_until(lambda: _connects(self.port), "the WebDAV server", self._thread.is_alive)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._thread is not None:
            self._thread.join(10)


class FtpServer(_Server):
    """pyftpdlib serving ``root`` to anonymous (read and write) and to ``user``/``password``."""

    user = "ftpuser"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.password = "ftp-" + secrets.token_hex(8)
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"ftp://{_HOST}:{self.port}"

    def start(self) -> None:
        _need("pyftpdlib", "pyftpdlib")
        with warnings.catch_warnings():
            # On Python < 3.12 pyftpdlib is built on the standard library's asyncore, which
            # warns that it is deprecated (3.12+ gets the pyasyncore backport instead).
            warnings.filterwarnings("ignore", "The asyn(core|chat) module is deprecated")
            from pyftpdlib.authorizers import DummyAuthorizer
            from pyftpdlib.handlers import FTPHandler
            from pyftpdlib.servers import FTPServer

        # "e l r a d f m w M T": every permission, writes included.
        perm = "elradfmwMT"
        authorizer = DummyAuthorizer()
        authorizer.add_user(self.user, self.password, str(self.root), perm=perm)
        with warnings.catch_warnings():
            # A writable anonymous login is what this test server is for.
            warnings.filterwarnings("ignore", "write permissions assigned to anonymous user")
            authorizer.add_anonymous(str(self.root), perm=perm)

        handler = type(
            "Handler",
            (FTPHandler,),
            # No 3 s pause after a failed login (a guard against guessing, slow in tests).
            {"authorizer": authorizer, "timeout": 30, "auth_failed_timeout": 0},
        )
        # pyftpdlib logs every command to stderr unless its logger has a handler already.
        ftp_log = logging.getLogger("pyftpdlib")
        if not ftp_log.handlers:
            ftp_log.addHandler(logging.NullHandler())
        self._server = FTPServer((_HOST, 0), handler)
        self.port = self._server.address[1]
        self._thread = threading.Thread(target=self._serve, name="ftp-server")
        self._thread.start()
        _wait_until(lambda: _connects(self.port), "the FTP server", self._thread.is_alive)

    def _serve(self) -> None:
        # Polls, so that stop() ends the loop here: pyftpdlib's IO loop is not thread safe.
        try:
            while not self._stopping.is_set():
                self._server.ioloop.loop(0.05, blocking=False)
        finally:
            self._server.close_all()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)


class MotoServer(_Server):
    """moto's S3 endpoint in a child process; requests must be signed with :attr:`key`."""

    region = "us-east-1"

    def __init__(self) -> None:
        self.port = free_port()
        self.key = ""
        self.secret = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._buckets = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    def start(self) -> None:
        _need("moto", "moto[server]")
        _need("boto3", "moto[server]")
        _need("cheroot", "cheroot")
        # A file, not a pipe: nobody reads a pipe while tests run, and a full one would block it.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by stop()
        self._process = subprocess.Popen(
            [sys.executable, __file__, "moto", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for pytest does not reach it first
        )
        process = self._process
        try:
            _wait_until(
                lambda: _connects(self.port), "the moto S3 server", lambda: process.poll() is None
            )
        except RuntimeError as exc:
            self._log.seek(0)
            tail = self._log.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{exc}; its output:\n{tail}") from None
        self._enforce_auth()

    def _enforce_auth(self) -> None:
        """Create an IAM user allowed everything, keep its key, then make moto check signatures."""
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        try:
            iam.create_user(UserName="toolferry")
            iam.put_user_policy(
                UserName="toolferry",
                PolicyName="everything",
                PolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                    }
                ),
            )
            key = iam.create_access_key(UserName="toolferry")["AccessKey"]
        finally:
            iam.close()
        self.key, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        # From now on every request needs a valid signature (moto's /moto-api/reset-auth).
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def client(self) -> Any:
        """A boto3 S3 client with the server's key (for set-up and checks); close it after."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
        )

    def new_bucket(self) -> str:
        """A fresh, empty bucket."""
        self._buckets += 1
        name = f"bucket-{os.getpid()}-{self._buckets}"
        s3 = self.client()
        try:
            s3.create_bucket(Bucket=name)
        finally:
            s3.close()
        return name

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()


def _serve_moto(port: int) -> None:
    """The child process of :class:`MotoServer`: moto's WSGI app on cheroot until SIGTERM."""
    from cheroot import wsgi
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        # moto reads the undecoded path (which keys with spaces are signed over) from RAW_URI,
        # as werkzeug and gunicorn name it; cheroot calls it REQUEST_URI.
        environ.setdefault("RAW_URI", environ.get("REQUEST_URI", ""))
        return moto(environ, start_response)

    # Ended by SIGTERM's default action: all its state is in memory.
    wsgi.Server((_HOST, port), app).start()


if __name__ == "__main__":
    if sys.argv[1:2] == ["moto"] and len(sys.argv) == 3:
        _serve_moto(int(sys.argv[2]))
    else:
        sys.exit(f"usage: {sys.argv[0]} moto PORT")
