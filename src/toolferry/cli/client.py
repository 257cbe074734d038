"""A small synchronous client for the TES 1.1 API that the CLI (and scripts) use.

Every failure a user can cause or meet — an HTTP error, a hub that does not answer, a wait that
runs out of time — is raised as :class:`ClientError` with a message fit to show as it is.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from toolferry.domain.states import TERMINAL
from toolferry.storage.file import replacing
from toolferry.storage.integrity import CHUNK

__all__ = ["ClientError", "TesClient", "WaitTimeout"]

API_PREFIX = "/ga4gh/tes/v1"
FILES_PREFIX = "/toolferry/v1/files"
Progress = Callable[[int], None]  # called with the number of bytes just moved


class ClientError(Exception):
    """A request failed. ``status`` is the HTTP status, or None when no answer came at all."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message if self.status is None else f"HTTP {self.status}: {self.message}"


class WaitTimeout(ClientError):
    """:meth:`TesClient.wait` gave up; ``state`` is the last state seen."""

    def __init__(self, task_id: str, state: str, seconds: float) -> None:
        super().__init__(None, f"task {task_id} is still {state} after {seconds:g} s")
        self.task_id = task_id
        self.state = state


def _detail(response: httpx.Response) -> str:
    """The server's explanation: FastAPI answers ``{"detail": str | list}``; anything else is
    shown as text so that a proxy's error page still says something."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:500] if text else response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):  # request validation errors: [{"loc": [...], "msg": ...}]
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return response.text.strip()[:500] or response.reason_phrase


class TesClient:
    """Talks to the TES API of a hub at ``{base_url}/ga4gh/tes/v1``.

    ``transport`` lets tests answer requests in-process (``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        timeout: float = 30,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the TES operations -------------------------------------------------------------------

    def create(self, task: Mapping[str, Any]) -> str:
        """Submit a task document; return the id the hub gave it."""
        body = self._request("POST", "/tasks", json=dict(task))
        task_id = body.get("id")
        if not isinstance(task_id, str):
            raise ClientError(None, f"{self.base_url} answered a task creation without an id")
        return task_id

    def get(self, task_id: str, view: str = "FULL") -> dict[str, Any]:
        return self._request("GET", f"/tasks/{task_id}", params={"view": view})

    def list(
        self,
        view: str = "MINIMAL",
        name_prefix: str | None = None,
        state: str | None = None,
        tags: Mapping[str, str] | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> dict[str, Any]:
        """One page of tasks: ``{"tasks": [...], "next_page_token": "..."}``."""
        params: list[tuple[str, str | int]] = [("view", view)]
        if name_prefix:
            params.append(("name_prefix", name_prefix))
        if state:
            params.append(("state", state))
        # tag_key and tag_value are zipped by the server, so each key gets a value ("" = any).
        for key, value in (tags or {}).items():
            params.append(("tag_key", key))
            params.append(("tag_value", value))
        if page_size is not None:
            params.append(("page_size", page_size))
        if page_token:
            params.append(("page_token", page_token))
        return self._request("GET", "/tasks", params=params)

    def iter_tasks(
        self,
        view: str = "MINIMAL",
        name_prefix: str | None = None,
        state: str | None = None,
        tags: Mapping[str, str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every matching task, fetching pages as the caller consumes them."""
        token: str | None = None
        while True:
            page = self.list(view, name_prefix, state, tags, page_size, token)
            yield from page.get("tasks") or []
            token = page.get("next_page_token") or None
            if token is None:
                return

    def cancel(self, task_id: str) -> None:
        self._request("POST", f"/tasks/{task_id}:cancel")

    def service_info(self) -> dict[str, Any]:
        return self._request("GET", "/service-info")

    def wait(
        self,
        task_id: str,
        poll: float = 0.2,
        timeout: float | None = None,
        on_state: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the task reaches a terminal state; return it in the FULL view.

        ``on_state`` is called with each new state seen. Polling starts at ``poll`` seconds and
        slows down to 2 s so that a long task does not cost five requests a second.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = poll
        last = ""
        while True:
            state = str(self.get(task_id, view="MINIMAL").get("state", "UNKNOWN"))
            if state != last:
                last = state
                if on_state is not None:
                    on_state(state)
            if state in TERMINAL:  # States are strs: the name from the API matches as it is
                return self.get(task_id, view="FULL")
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(task_id, state, timeout or 0)
                time.sleep(min(interval, remaining))
            else:
                time.sleep(interval)
            interval = min(max(interval * 1.5, poll), max(poll, 2.0))

    # -- the hub's file store (toolferry's own API, not TES) -----------------------------------

    def _files_url(self, space: str | None = None, rel: str | None = None) -> str:
        # An absolute URL: the client's base URL ends in the TES prefix.
        url = self.base_url + FILES_PREFIX
        if space is not None:
            url += "/" + quote(space, safe="")
        return url if rel is None else f"{url}/{quote(rel)}"

    def create_space(self) -> str:
        """A new file space on the hub, owned by the caller; returns its id."""
        body = self._request("POST", self._files_url())
        space = body.get("id")
        if not isinstance(space, str):
            raise ClientError(None, f"{self.base_url} answered a file space creation without an id")
        return space

    def upload(
        self, space: str, rel: str, src: Path, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Stream the file ``src`` to ``rel`` in ``space``; return the hub's answer
        (path, size, sha256, url) once the hub's checksum matches what was sent."""
        digest = hashlib.sha256()

        def body() -> Iterator[bytes]:
            with src.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
                    yield chunk
                    if progress is not None:
                        progress(len(chunk))

        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(src.stat().st_size),
        }
        answer = self._request("PUT", self._files_url(space, rel), content=body(), headers=headers)
        if answer.get("sha256") != digest.hexdigest():
            raise ClientError(
                None, f"{src} changed while it was being uploaded (the hub got other bytes)"
            )
        return answer

    def make_dir(self, space: str, rel: str) -> None:
        """Create the (empty) directory ``rel`` in ``space``."""
        self._request("PUT", self._files_url(space, rel), params={"directory": "true"})

    def list_files(self, space: str) -> builtins.list[dict[str, Any]]:
        """Every file in ``space``: ``[{"path", "size", "url"}]``, sorted by path."""
        files = self._request("GET", self._files_url(space)).get("files")
        return files if isinstance(files, list) else []

    def download(self, space: str, rel: str, dest: Path, progress: Progress | None = None) -> int:
        """Stream ``rel`` in ``space`` to ``dest``, which appears complete or not at all (its
        parents are created); returns the size."""
        size = 0
        with self._errors(), self._http.stream("GET", self._files_url(space, rel)) as response:
            if response.status_code >= 400:
                response.read()
                raise ClientError(response.status_code, _detail(response))
            with replacing(dest) as tmp, tmp.open("wb") as fh:
                for chunk in response.iter_bytes(CHUNK):
                    fh.write(chunk)
                    size += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
        return size

    def delete_space(self, space: str) -> None:
        """Delete ``space`` and every file in it."""
        self._request("DELETE", self._files_url(space))

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Failures to reach the hub as ClientErrors that say what to check."""
        try:
            yield
        except httpx.ConnectError as exc:
            raise ClientError(
                None,
                f"nothing answered at {self.base_url} ({exc}); check TOOLFERRY_URL, "
                "or start a hub with `toolferry server`",
            ) from exc
        except httpx.TimeoutException as exc:
            raise ClientError(
                None, f"{self.base_url} did not answer within {self.timeout:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise ClientError(None, f"request to {self.base_url} failed: {exc}") from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        with self._errors():
            response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ClientError(response.status_code, _detail(response))
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise ClientError(
                response.status_code, f"{self.base_url} answered something that is not JSON"
            ) from exc
        if not isinstance(body, dict):
            raise ClientError(response.status_code, f"{self.base_url} answered unexpected JSON")
        return body

    # -- toolferry's own API: the caller's storage credentials -----------------------------------

    def _credential_url(self, name: str | None = None) -> str:
        # An absolute URL: the client's base URL ends in the TES prefix.
        url = f"{self.base_url}/toolferry/v1/credentials"
        return url if name is None else f"{url}/{quote(name, safe='')}"

    def list_credentials(self) -> dict[str, Any]:
        """The caller's storage credentials, without secrets: ``{"credentials": [...]}``."""
        return self._request("GET", self._credential_url())

    def put_credential(self, name: str, credential: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace the caller's credential ``name``; the answer holds no secret (a
        new one has ``created_at == updated_at``)."""
        return self._request("PUT", self._credential_url(name), json=dict(credential))

    def delete_credential(self, name: str) -> None:
        """Delete the caller's credential ``name``; ClientError 404 when there is none."""
        self._request("DELETE", self._credential_url(name))

    # -- toolferry's own API: the environment catalogue --------------------------------------

    def catalogue(self, method: str, path: str = "", **kwargs: Any) -> dict[str, Any]:
        """A request to ``/api/v1/{path}`` (path starts with ``environments`` or
        ``execution-environments``); the answer's JSON object."""
        return self._request(method, f"{self.base_url}/api/v1/{path.lstrip('/')}", **kwargs)

    def catalogue_list(self, path: str, **kwargs: Any) -> builtins.list[dict[str, Any]]:
        """A GET under ``/api/v1/`` that answers a JSON list."""
        with self._errors():
            response = self._http.get(f"{self.base_url}/api/v1/{path.lstrip('/')}", **kwargs)
        if response.status_code >= 400:
            raise ClientError(response.status_code, _detail(response))
        body = response.json()
        if not isinstance(body, list):
            raise ClientError(response.status_code, f"{self.base_url} answered unexpected JSON")
        return body

    def catalogue_download(self, path: str, dest: Path, **kwargs: Any) -> tuple[str | None, int]:
        """Stream a GET under ``/api/v1/`` to ``dest`` (complete or not at all); the file name
        the hub suggests (Content-Disposition) and the size."""
        size = 0
        url = f"{self.base_url}/api/v1/{path.lstrip('/')}"
        with self._errors(), self._http.stream("GET", url, timeout=None, **kwargs) as response:
            if response.status_code >= 400:
                response.read()
                raise ClientError(response.status_code, _detail(response))
            disposition = response.headers.get("content-disposition", "")
            match = re.search(r'filename="?([^";]+)"?', disposition)
            with replacing(dest) as tmp, tmp.open("wb") as fh:
                for chunk in response.iter_bytes(CHUNK):
                    fh.write(chunk)
                    size += len(chunk)
        return (match.group(1) if match else None), size
