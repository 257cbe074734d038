"""A real OCI registry on 127.0.0.1 for the catalogue tests: Debian's ``docker-registry``
(distribution 2.8), optionally behind the Docker token protocol with a token service of ours.

- :class:`RegistryServer` writes a ``config.yml`` (filesystem storage in a temporary directory,
  deletes enabled, a free loopback port) and runs ``docker-registry serve`` as a child process
  that ends with the test process (``PR_SET_PDEATHSIG``), waiting until ``/v2/`` answers.
- :class:`TokenService` (this file run as a script, in a child process) issues the RS256 JWTs
  the registry's ``auth.token`` checks: it signs with a key whose self-signed certificate is the
  registry's ``rootcertbundle`` and sends it in the ``x5c`` header. Users with the right
  password get what they ask for; anyone else gets ``pull`` only. This is the same flow
  Harbor, GHCR and Docker Hub use, exercised against the real registry's token checks.
"""

from __future__ import annotations

import base64
import ctypes
import datetime
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["RegistryServer", "TokenService", "make_signing_pair"]

HOST = "127.0.0.1"
SERVICE = "toolferry-test-registry"
ISSUER = "toolferry-test-issuer"
_START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the test process ends, however it ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def make_signing_pair(folder: Path) -> tuple[Path, Path]:
    """An RSA key and its self-signed certificate (PEM files in ``folder``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / "token.key", folder / "token.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class _Child:
    """A child process that prints nothing we need and logs to a temporary file."""

    name = "child"

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

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
        raise NotImplementedError

    def _spawn(self, argv: list[str], stdin: bytes | None = None) -> subprocess.Popen[bytes]:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by stop()
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdin is not None else self._log,
            stderr=self._log,
            preexec_fn=_die_with_parent,
        )
        if stdin is not None:
            assert self._process.stdin is not None
            self._process.stdin.write(stdin)
            self._process.stdin.close()
        return self._process

    def output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-3000:].decode(errors="replace")

    def _fail(self, what: str) -> None:
        raise RuntimeError(f"the {self.name} {what}; its output:\n{self.output()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
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


class TokenService(_Child):
    """Issues registry tokens (Docker token protocol) at ``http://127.0.0.1:PORT/token``."""

    name = "token service"

    def __init__(self, key: Path, cert: Path, users: dict[str, str]) -> None:
        super().__init__()
        self.key, self.cert, self.users = key, cert, dict(users)

    @property
    def realm(self) -> str:
        return f"http://{HOST}:{self.port}/token"

    def start(self) -> None:
        config = {"key": str(self.key), "cert": str(self.cert), "users": self.users}
        process = self._spawn([sys.executable, __file__], json.dumps(config).encode())
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], _START_TIMEOUT)
        line = process.stdout.readline().decode().strip() if ready else ""
        if not line.isdigit():
            self._fail("did not say which port it listens on")
        self.port = int(line)


class RegistryServer(_Child):
    """``docker-registry serve`` on a free loopback port, storing below ``root``."""

    name = "registry (docker-registry serve)"

    def __init__(self, binary: str, root: Path, token: TokenService | None = None) -> None:
        super().__init__()
        self.binary, self.root, self.token = binary, root, token

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of references to it."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def storage(self) -> Path:
        return self.root / "data"

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob's bytes (its filesystem driver's layout); manifests
        are blobs too."""
        algorithm, _, hexpart = digest.partition(":")
        return (
            self.storage / "docker/registry/v2/blobs" / algorithm / hexpart[:2] / hexpart / "data"
        )

    def config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {self.host}",
        ]
        if self.token is not None:
            lines += [
                "auth:",
                "  token:",
                f"    realm: {self.token.realm}",
                f"    service: {SERVICE}",
                f"    issuer: {ISSUER}",
                f"    rootcertbundle: {self.token.cert}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        config = self.root / "config.yml"
        config.write_text(self.config())
        process = self._spawn([self.binary, "serve", str(config)])
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers():
            if process.poll() is not None:
                self._fail(f"exited with status {process.returncode}")
            if time.monotonic() > deadline:
                self._fail(f"did not answer within {_START_TIMEOUT:g}s")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v2/", timeout=2):
                return True
        except urllib.error.HTTPError as exc:
            return exc.code == 401  # behind token auth: it answers, with a challenge
        except OSError:
            return False


# -- the token service (this file run as a script) ------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _serve_tokens(config: dict[str, Any]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(Path(config["key"]).read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    certificate = x509.load_pem_x509_certificate(Path(config["cert"]).read_bytes())
    x5c = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
    users: dict[str, str] = config["users"]

    def user_of(header: str | None) -> str | bool | None:
        """The user, None for anonymous, False for wrong credentials."""
        if not header:
            return None
        if not header.startswith("Basic "):
            return False
        name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return name if users.get(name) == password else False

    def token(user: str | None, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if user is not None or a == "pull"]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            user = user_of(self.headers.get("Authorization"))
            if url.path != "/token" or query.get("service") != [SERVICE] or user is False:
                body = json.dumps({"errors": [{"code": "DENIED", "message": "bad credentials"}]})
                self._answer(401, body)
                return
            issued = token(user if isinstance(user, str) else None, query.get("scope", []))
            self._answer(200, json.dumps({"token": issued, "expires_in": 300}))

        def _answer(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    print(server.server_address[1], flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    server.serve_forever()


if __name__ == "__main__":
    _serve_tokens(json.load(sys.stdin))
