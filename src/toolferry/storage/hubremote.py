"""``hub://`` URLs seen from a data site: the hub's file store, over the agent's own API.

A task a user submitted with local files (``toolferry run -i ... -o ...``) names hub:// URLs
for them; at a data site the agent reads those inputs and writes those outputs through
``/api/v1/agent/files``, with the site's token. The hub lets a site reach only the URLs its
own tasks name.
"""

from __future__ import annotations

import builtins
import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from toolferry.storage.base import Credential, ObjectInfo, Operation, StorageError, Uploaded
from toolferry.storage.file import replacing, replacing_dir, walk_tree
from toolferry.storage.hubfiles import SCHEME, BadPath, hub_url, parse_hub_url
from toolferry.storage.integrity import CHUNK

__all__ = ["RemoteHubFiles"]


class RemoteHubFiles:
    schemes: tuple[str, ...] = (SCHEME,)
    operations: frozenset[Operation] = frozenset(Operation)

    def __init__(self, hub_url_: str, token: str, *, timeout: float = 60) -> None:
        self._client = httpx.Client(
            base_url=hub_url_.rstrip("/") + "/api/v1/agent/files",
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._client.close()

    def supports(self, url: str, *, write: bool) -> str | None:
        try:
            parse_hub_url(url)
        except BadPath as exc:
            return f"{url} {exc}"
        return None

    def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo:
        space, rel = self._parse(url)
        answer = self._call("HEAD", url, f"/{space}/{rel}")
        if answer.status_code == 404:
            files = self._files(url, space, rel)
            if files:
                return ObjectInfo(url=url, size=0, is_dir=True)
            raise StorageError(url, "no such file or directory in the hub's file store")
        self._check(url, answer)
        return ObjectInfo(
            url=url,
            size=int(answer.headers.get("content-length", -1)),
            etag=answer.headers.get("etag"),
            modified=answer.headers.get("last-modified"),
        )

    def get(
        self, url: str, dest: Path, *, directory: bool, credential: Credential | None = None
    ) -> str | None:
        space, rel = self._parse(url)
        if not directory:
            return self._download(url, space, rel, dest)
        files = self._files(url, space, rel)
        with replacing_dir(dest) as tmp:
            for item in files:
                inner = (
                    PurePosixPath(item["path"]).relative_to(rel)
                    if rel
                    else PurePosixPath(item["path"])
                )
                target = tmp / inner
                target.parent.mkdir(parents=True, exist_ok=True)
                self._download(hub_url(space, item["path"]), space, item["path"], target)
        return None

    def put(
        self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
    ) -> list[Uploaded]:
        space, rel = self._parse(url)
        if not directory:
            return [self._upload(url, space, rel, src)]
        uploaded = []
        # Outputs are the task's own files: links out of the folder are not followed.
        for inner, real, is_dir in walk_tree(url, src, may_follow=lambda _: False):
            if is_dir:
                continue
            target = str(PurePosixPath(rel) / inner) if rel else str(inner)
            uploaded.append(self._upload(hub_url(space, target), space, target, real))
        return uploaded

    def list(self, url: str, *, credential: Credential | None = None) -> list[ObjectInfo]:
        space, rel = self._parse(url)
        return [
            ObjectInfo(url=hub_url(space, f["path"]), size=int(f["size"]))
            for f in self._files(url, space, rel)
        ]

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _parse(url: str) -> tuple[str, str]:
        try:
            return parse_hub_url(url)
        except BadPath as exc:
            raise StorageError(url, str(exc)) from None

    def _call(self, method: str, url: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StorageError(url, f"the hub cannot be reached: {exc}") from None

    @staticmethod
    def _check(url: str, answer: httpx.Response) -> None:
        if answer.status_code >= 400:
            try:
                detail = answer.json().get("detail", answer.text)
            except ValueError:
                detail = answer.text
            raise StorageError(url, f"the hub answered {answer.status_code}: {detail}")

    def _files(self, url: str, space: str, rel: str) -> builtins.list[dict[str, Any]]:
        answer = self._call("GET", url, f"/{space}", params={"under": rel})
        self._check(url, answer)
        files: builtins.list[dict[str, Any]] = answer.json()["files"]
        return files

    def _download(self, url: str, space: str, rel: str, dest: Path) -> str:
        digest = hashlib.sha256()
        try:
            with (
                replacing(dest) as tmp,
                tmp.open("wb") as fh,
                self._client.stream("GET", f"/{space}/{rel}") as answer,
            ):
                if answer.status_code >= 400:
                    answer.read()
                    self._check(url, answer)
                for chunk in answer.iter_bytes(CHUNK):
                    fh.write(chunk)
                    digest.update(chunk)
        except httpx.HTTPError as exc:
            raise StorageError(url, f"the hub cannot be reached: {exc}") from None
        return digest.hexdigest()

    def _upload(self, url: str, space: str, rel: str, src: Path) -> Uploaded:
        def body() -> Any:
            with src.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk

        answer = self._call(
            "PUT",
            url,
            f"/{space}/{rel}",
            content=body(),
            headers={"content-length": str(os.path.getsize(src))},
        )
        self._check(url, answer)
        return Uploaded(url=url, path=src, size=os.path.getsize(src))
