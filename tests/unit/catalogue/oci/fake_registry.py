"""An in-memory registry speaking the distribution API to an ``httpx.MockTransport``.

Enough of the API for the store's unit tests (real-registry behaviour is tested against
Debian's docker-registry under tests/integration/catalogue): blobs, monolithic, chunked and
streamed uploads with ``Content-Range`` checks, cross-repository mounts, manifests with
reference checks, tags and catalog paging with ``Link``, and three ways of authenticating: none,
HTTP Basic, and the Bearer token flow with a token endpoint on the same host.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

BASE = "http://fake.registry"
REALM = f"{BASE}/token"
SERVICE = "fake-service"
_ROUTE = re.compile(
    r"^/v2/(?P<name>.+?)/(?P<kind>blobs/uploads|blobs|manifests|tags)(?:/(?P<rest>.*))?$"
)


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"errors": [{"code": code, "message": message}]}
    return httpx.Response(status, json=body, headers=headers or {})


@dataclass
class FakeRegistry:
    """``auth`` is None, "basic" or "bearer"; ``users`` maps names to passwords."""

    auth: str | None = None
    users: dict[str, str] = field(default_factory=lambda: {"alice": "secret"})
    page_size: int | None = None  # answer lists in pages of this size (Link: next)
    blobs: dict[str, dict[str, bytes]] = field(default_factory=lambda: defaultdict(dict))
    manifests: dict[str, dict[str, tuple[bytes, str]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    tags: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    uploads: dict[str, tuple[str, bytearray]] = field(default_factory=dict)
    tokens: dict[str, set[str]] = field(default_factory=dict)  # token → granted "repo:action"
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    urls: list[httpx.URL] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- auth ---------------------------------------------------------------------------

    def _user(self, header: str) -> str | None:
        if not header.startswith("Basic "):
            return None
        name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return name if self.users.get(name) == password else None

    def _token(self, request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        header = request.headers.get("Authorization", "")
        user = self._user(header)
        if header and user is None:
            return _error(401, "UNAUTHORIZED", "bad credentials")
        granted: set[str] = set()
        for scope in query.get("scope", []):
            _, name, actions = scope.split(":")
            for action in actions.split(","):
                if action == "pull" or user is not None:  # anonymous may pull only
                    granted.add(f"{name}:{action}")
        token = secrets.token_hex(8)
        self.tokens[token] = granted
        return httpx.Response(200, json={"token": token, "expires_in": 300})

    def _authorised(self, request: httpx.Request, name: str, action: str) -> httpx.Response | None:
        header = request.headers.get("Authorization", "")
        if self.auth == "basic":
            if self._user(header) is None:
                return _error(
                    401,
                    "UNAUTHORIZED",
                    "authentication required",
                    {"WWW-Authenticate": 'Basic realm="fake"'},
                )
            return None
        if self.auth == "bearer":
            granted = self.tokens.get(header.removeprefix("Bearer "), set())
            wanted = f"{name}:{action}" if name else "catalog:*"
            token = header.removeprefix("Bearer ")
            if header.startswith("Bearer ") and (
                wanted in granted or (action == "ping" and token in self.tokens)
            ):
                return None
            scope = (
                f"repository:{name}:{'pull,push' if action == 'push' else 'pull'}"
                if name
                else "registry:catalog:*"
            )
            challenge = f'Bearer realm="{REALM}",service="{SERVICE}",scope="{scope}"'
            if header.startswith("Bearer "):
                challenge += ',error="insufficient_scope"'
            return _error(
                401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge}
            )
        return None

    # -- routing ------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.log.append((request.method, path, dict(request.headers)))
        self.urls.append(request.url)
        if path == "/token":
            return self._token(request)
        if path == "/v2/":
            return self._authorised(request, "", "ping") or httpx.Response(200, json={})
        if path == "/v2/_catalog":
            denied = self._authorised(request, "", "pull")
            names = sorted(set(self.blobs) | set(self.manifests))
            return denied or self._paged(request, "/v2/_catalog", "repositories", names, {})
        match = _ROUTE.match(path)
        if match is None:
            return _error(404, "NOT_FOUND", path)
        name, kind, rest = match["name"], match["kind"], match["rest"] or ""
        action = "pull" if request.method in ("GET", "HEAD") else "push"
        denied = self._authorised(request, name, action)
        if denied is not None:
            return denied
        if kind == "blobs/uploads":
            return self._upload(request, name, rest)
        if kind == "blobs":
            data = self.blobs[name].get(rest)
            if data is None:
                return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            headers = {"Content-Length": str(len(data)), "Docker-Content-Digest": rest}
            return httpx.Response(
                200, content=b"" if request.method == "HEAD" else data, headers=headers
            )
        if kind == "manifests":
            return self._manifest(request, name, rest)
        if name not in self.tags and name not in self.manifests:
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry")
        return self._paged(
            request, f"/v2/{name}/tags/list", "tags", sorted(self.tags[name]), {"name": name}
        )

    def _paged(
        self, request: httpx.Request, path: str, key: str, items: list[str], extra: dict[str, Any]
    ) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        last = query.get("last", [""])[0]
        items = [i for i in items if i > last]
        headers = {}
        if self.page_size is not None and len(items) > self.page_size:
            items = items[: self.page_size]
            headers["Link"] = f'<{path}?n={self.page_size}&last={items[-1]}>; rel="next"'
        return httpx.Response(200, json={**extra, key: items}, headers=headers)

    def _upload(self, request: httpx.Request, name: str, rest: str) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        if request.method == "POST":
            mount, source = query.get("mount", [""])[0], query.get("from", [""])[0]
            if mount and mount in self.blobs.get(source, {}):
                self.blobs[name][mount] = self.blobs[source][mount]
                return httpx.Response(201, headers={"Location": f"/v2/{name}/blobs/{mount}"})
            upload = secrets.token_hex(8)
            self.uploads[upload] = (name, bytearray())
            return httpx.Response(
                202,
                headers={"Location": f"/v2/{name}/blobs/uploads/{upload}?_state=x", "Range": "0-0"},
            )
        if rest not in self.uploads:
            return _error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        _, buffer = self.uploads[rest]
        body = request.read()
        if request.method == "DELETE":
            del self.uploads[rest]
            return httpx.Response(204)
        if request.method == "PATCH":
            span = request.headers.get("Content-Range")
            if span is not None:
                start, end = (int(x) for x in span.split("-"))
                if start != len(buffer) or end - start + 1 != len(body):
                    return _error(416, "BLOB_UPLOAD_INVALID", f"bad range {span}")
            buffer.extend(body)
            return httpx.Response(
                202,
                headers={
                    "Location": f"/v2/{name}/blobs/uploads/{rest}?_state=y",
                    "Range": f"0-{len(buffer) - 1}",
                },
            )
        buffer.extend(body)
        digest = query.get("digest", [""])[0]
        if "sha256:" + hashlib.sha256(buffer).hexdigest() != digest:
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        self.blobs[name][digest] = bytes(buffer)
        del self.uploads[rest]
        return httpx.Response(
            201, headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest}
        )

    def _manifest(self, request: httpx.Request, name: str, reference: str) -> httpx.Response:
        if request.method == "PUT":
            data = request.read()
            document = json.loads(data)
            for child in [document.get("config"), *document.get("layers", [])]:
                if child and child["digest"] not in self.blobs[name]:
                    return _error(
                        400, "MANIFEST_BLOB_UNKNOWN", f"blob unknown to registry: {child['digest']}"
                    )
            for child in document.get("manifests", []):
                if child["digest"] not in self.manifests[name]:
                    return _error(
                        400, "MANIFEST_BLOB_UNKNOWN", f"manifest unknown: {child['digest']}"
                    )
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            self.manifests[name][digest] = (data, request.headers["Content-Type"])
            if ":" not in reference:
                self.tags[name][reference] = digest
            return httpx.Response(
                201,
                headers={
                    "Docker-Content-Digest": digest,
                    "Location": f"/v2/{name}/manifests/{digest}",
                },
            )
        digest = reference if ":" in reference else self.tags[name].get(reference, "")
        stored = self.manifests[name].get(digest)
        if stored is None:
            return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        if request.method == "DELETE":
            del self.manifests[name][digest]
            for tag in [t for t, d in self.tags[name].items() if d == digest]:
                del self.tags[name][tag]
            return httpx.Response(202)
        data, kind = stored
        headers = {"Content-Type": kind, "Docker-Content-Digest": digest}
        return httpx.Response(
            200, content=b"" if request.method == "HEAD" else data, headers=headers
        )
