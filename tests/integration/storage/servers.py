"""Real storage servers on 127.0.0.1 for the storage tests: WebDAV, S3 and FTP.

- :class:`WebdavServer`: wsgidav on cheroot; anonymous, or HTTP basic auth for given users.
- :class:`MotoServer`: moto's S3, on cheroot rather than ``moto_server``'s werkzeug, which adds a
  second ``Server`` header that aiohttp >= 3.14 (under s3fs) rejects. Signatures are checked:
  :attr:`MotoServer.key` and :attr:`MotoServer.secret` are the only valid credentials.
- :class:`FtpServer`: pyftpdlib; anonymous login (writable) and one user with a password.

Each runs in a child process (this file, run as a script: it reads its configuration as JSON
from stdin, binds a free port, prints it, and serves until SIGTERM or until the test process is
gone), so that nothing of a server (threads, sockets, warnings, global state) lives in the test
process. Each is a context manager: it waits until the server answers, and on exit stops the
child and reaps it. Servers are meant to be shared by many tests: :meth:`WebdavServer.area`
and :meth:`FtpServer.area` give each test its own directory on them.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = [
    "FtpArea",
    "FtpServer",
    "MotoServer",
    "ServerMissing",
    "WebdavArea",
    "WebdavServer",
    "free_port",
    "refused_port",
]

_HOST = "127.0.0.1"
_START_TIMEOUT = 60.0


class ServerMissing(RuntimeError):
    """A server package is not installed; the message says how to install it."""


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
    return port


refused_port = free_port  # nothing listens there: connecting is refused


def _need(*modules: str) -> None:
    for module in modules:
        try:
            __import__(module)
        except ImportError as exc:
            raise ServerMissing(
                f"{module} is not installed (a test server): run `.venv/bin/pip install -e "
                "'.[test]'` (it brings wsgidav, cheroot, moto[server] and pyftpdlib)"
            ) from exc


class _ChildServer:
    """A server in a child process: ``python servers.py`` with a JSON configuration on stdin."""

    name = "server"
    modules: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        _need(*self.modules)
        # A file, not a pipe: nobody reads the server's output while tests run, and a full
        # pipe would block it.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by stop()
        self._process = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,  # a Ctrl-C meant for pytest does not reach it first
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(self.config()).encode())
        self._process.stdin.close()
        self.port = int(self._read_line(self._process.stdout))
        deadline = time.monotonic() + _START_TIMEOUT
        while not _connects(self.port):
            if time.monotonic() > deadline:
                self._fail(f"did not answer within {_START_TIMEOUT:g}s")
            time.sleep(0.02)

    def _read_line(self, stdout: IO[bytes]) -> str:
        ready, _, _ = select.select([stdout], [], [], _START_TIMEOUT)
        line = stdout.readline().decode().strip() if ready else ""
        if not line.isdigit():
            self._fail("did not say which port it listens on")
        return line

    def _fail(self, what: str) -> None:
        assert self._log is not None
        self._log.seek(0)
        output = self._log.read()[-3000:].decode(errors="replace")
        raise RuntimeError(f"the {self.name} {what}; its output:\n{output}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()  # SIGTERM's default action: every state is in memory
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None


def _connects(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=1):
            return True
    except OSError:
        return False


# -- WebDAV -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebdavArea:
    """One test's directory on a WebDAV server: ``url`` serves ``root``."""

    url: str  # webdav://127.0.0.1:PORT/<area>
    root: Path
    users: dict[str, str] = field(default_factory=dict)


class WebdavServer(_ChildServer):
    """wsgidav serving ``root``; anonymous and writable, unless ``users`` (name → password) is
    given: then HTTP basic auth is required."""

    name = "WebDAV server"
    modules = ("wsgidav", "cheroot")

    def __init__(self, root: Path, users: dict[str, str] | None = None) -> None:
        super().__init__()
        self.root = root
        self.users = dict(users or {})
        self._areas = 0

    @property
    def url(self) -> str:
        """``webdav://127.0.0.1:PORT`` (the storage maps webdav:// to http://)."""
        return f"webdav://{_HOST}:{self.port}"

    def config(self) -> dict[str, Any]:
        return {"kind": "webdav", "root": str(self.root), "users": self.users}

    def area(self) -> WebdavArea:
        """A new, empty directory of its own on this server."""
        self._areas += 1
        name = f"t{self._areas}"
        (self.root / name).mkdir()
        return WebdavArea(url=f"{self.url}/{name}", root=self.root / name, users=self.users)


def _serve_webdav(config: dict[str, Any]) -> None:
    from wsgidav.wsgidav_app import WsgiDAVApp

    users: dict[str, str] = config["users"]
    user_mapping: dict[str, Any] = (
        {"*": {name: {"password": pw} for name, pw in users.items()}} if users else {"*": True}
    )
    app = WsgiDAVApp(
        {
            "host": _HOST,
            "port": 0,
            "provider_mapping": {"/": config["root"]},
            "simple_dc": {"user_mapping": user_mapping},
            "http_authenticator": {
                "accept_basic": True,
                "accept_digest": False,
                "default_to_digest": False,
            },
            "dir_browser": {"enable": False},
            "verbose": 1,
            "logging": {"enable": False},
        }
    )
    _serve_wsgi(app)


# -- S3 -----------------------------------------------------------------------------------


class MotoServer(_ChildServer):
    """moto's S3 endpoint; requests must be signed with :attr:`key` and :attr:`secret`."""

    name = "moto S3 server"
    modules = ("moto", "boto3", "cheroot")
    region = "us-east-1"

    def __init__(self) -> None:
        super().__init__()
        self.key = ""
        self.secret = ""
        self._buckets = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    def config(self) -> dict[str, Any]:
        return {"kind": "moto"}

    def start(self) -> None:
        super().start()
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


def _serve_moto(config: dict[str, Any]) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        # moto reads the undecoded path (which keys with spaces are signed over) from RAW_URI,
        # as werkzeug and gunicorn name it; cheroot calls it REQUEST_URI.
        environ.setdefault("RAW_URI", environ.get("REQUEST_URI", ""))
        return moto(environ, start_response)

    _serve_wsgi(app)


def _serve_wsgi(app: Any) -> None:
    from cheroot import wsgi

    server = wsgi.Server((_HOST, 0), app, numthreads=4)
    server.prepare()
    _announce(server.bind_addr[1])
    server.serve()


# -- FTP ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FtpArea:
    """One test's directory on an FTP server: ``url`` serves ``root``."""

    url: str  # ftp://127.0.0.1:PORT/<area>
    root: Path
    user: str
    password: str


class FtpServer(_ChildServer):
    """pyftpdlib serving ``root`` to anonymous (read and write) and to :attr:`user` with
    :attr:`password`."""

    name = "FTP server"
    modules = ("pyftpdlib",)
    user = "ftpuser"

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.password = "ftp-" + secrets.token_hex(8)
        self._areas = 0

    @property
    def url(self) -> str:
        return f"ftp://{_HOST}:{self.port}"

    def config(self) -> dict[str, Any]:
        return {"kind": "ftp", "root": str(self.root), "user": self.user, "password": self.password}

    def area(self) -> FtpArea:
        """A new, empty directory of its own on this server."""
        self._areas += 1
        name = f"t{self._areas}"
        (self.root / name).mkdir()
        return FtpArea(
            url=f"{self.url}/{name}", root=self.root / name, user=self.user, password=self.password
        )


def _serve_ftp(config: dict[str, Any]) -> None:
    import logging

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    perm = "elradfmwMT"  # every permission, writes included
    authorizer = DummyAuthorizer()
    authorizer.add_user(config["user"], config["password"], config["root"], perm=perm)
    authorizer.add_anonymous(config["root"], perm=perm)  # warns (to stderr): meant here
    handler = type(
        "Handler",
        (FTPHandler,),
        # No 3 s pause after a failed login (a guard against guessing, slow in tests).
        {"authorizer": authorizer, "timeout": 60, "auth_failed_timeout": 0},
    )
    logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())  # no log of each command
    server = FTPServer((_HOST, 0), handler)
    _announce(server.address[1])
    server.serve_forever(handle_exit=False)


def _announce(port: int) -> None:
    """Tell the parent the port; from then on stdout (which it no longer reads) is stderr."""
    print(port, flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def _exit_with_parent() -> None:
    """End this server when the test process ends, even if it had no time to stop it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


if __name__ == "__main__":
    _exit_with_parent()
    _config = json.load(sys.stdin)
    {"webdav": _serve_webdav, "moto": _serve_moto, "ftp": _serve_ftp}[_config["kind"]](_config)
