"""The hub's file store over HTTP: clients upload task inputs and fetch outputs (hub:// URLs).

A *space* is a folder owned by the user who created it; its files are named
``hub://<space>/<path>`` in task documents. Another user's space answers 404, as a missing one
does; admins see every space.
"""

from __future__ import annotations

import errno
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from toolferry.api import errors
from toolferry.api.schemas import ErrorOut
from toolferry.security.identity import Identity
from toolferry.storage.hubfiles import (
    BadPath,
    ChecksumMismatch,
    HubFileStore,
    NoSuchSpace,
    StoredFile,
    hub_url,
)
from toolferry.storage.integrity import CHUNK

__all__ = ["PREFIX", "install", "router"]

PREFIX = "/toolferry/v1/files"
_ERROR: dict[str, Any] = {"model": ErrorOut}
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# OpenAPI links: clients (and fuzzers) learn that the new space's id feeds the other routes.
_SPACE_LINKS = {
    name: {"operationId": operation, "parameters": {"space": "$response.body#/id"}}
    for name, operation in (
        ("UploadFile", "UploadFile"),
        ("ListFiles", "ListFiles"),
        ("DownloadFile", "DownloadFile"),
        ("DeleteFileSpace", "DeleteFileSpace"),
    )
}
_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


class SpaceOut(BaseModel):
    id: str = Field(description="The space's id (32 hex digits).")
    url: str = Field(description="hub://<id>/: task inputs and outputs may name files below it.")


class FileOut(BaseModel):
    path: str = Field(description="Where the file is in the space.")
    size: int = Field(description="Size in bytes.")
    sha256: str | None = Field(
        default=None, description="sha256 (hex) of what was stored; absent for a directory."
    )
    url: str = Field(description="The file's hub:// URL, for task documents.")


class ListedFileOut(BaseModel):
    path: str
    size: int
    url: str


class ListFilesOut(BaseModel):
    files: list[ListedFileOut] = Field(description="Every file in the space, sorted by path.")


async def _store(request: Request) -> HubFileStore:
    return request.app.state.hub.files  # type: ignore[no-any-return]


async def _who(request: Request) -> Identity:
    return request.app.state.hub.authenticate(request)  # type: ignore[no-any-return]


Who = Annotated[Identity, Depends(_who)]
Store = Annotated[HubFileStore, Depends(_store)]


def _not_found(space: str) -> HTTPException:
    return HTTPException(404, f"no file space {space!r}")


def _visible(store: HubFileStore, space: str, who: Identity) -> None:
    """404 unless ``space`` exists and ``who`` owns it (or is an admin)."""
    if not store.may_use(space, who.user, is_admin=who.admin):
        raise _not_found(space)


def _bad_path(exc: BadPath) -> HTTPException:
    return HTTPException(400, f"path: {exc}")


def _file_out(space: str, stored: StoredFile) -> dict[str, Any]:
    return {
        "path": stored.path,
        "size": stored.size,
        "sha256": stored.sha256,
        "url": hub_url(space, stored.path),
    }


def router() -> APIRouter:
    """The files routes, relative to :data:`PREFIX`."""
    api = APIRouter(tags=["files"])

    @api.post(
        "",
        summary="Create a file space",
        operation_id="CreateFileSpace",
        status_code=201,
        response_model=SpaceOut,
        responses={201: {"links": _SPACE_LINKS}, 401: _ERROR},
    )
    def create_space(store: Store, who: Who) -> dict[str, str]:
        """A new, empty space owned by the caller, to upload a task's inputs into and to name
        as the destination of its outputs."""
        space = store.create_space(who.user)
        return {"id": space, "url": hub_url(space)}

    @api.put(
        "/{space}/{path:path}",
        summary="Upload a file",
        operation_id="UploadFile",
        status_code=201,
        response_model=FileOut,
        responses={400: _ERROR, 401: _ERROR, 404: _ERROR, 409: _ERROR, 507: _ERROR},
        openapi_extra={"requestBody": {"required": True, "content": _BINARY}},
    )
    async def upload(
        space: str,
        path: str,
        request: Request,
        store: Store,
        who: Who,
        sha256: Annotated[
            str | None,
            Header(
                alias="X-Content-SHA256",
                # Documented, checked by the handler: its 400 names the header.
                json_schema_extra={"pattern": "^[0-9a-fA-F]{64}$"},
                description="sha256 (64 hex digits) of the body; a mismatch is refused (400) "
                "and nothing is kept.",
            ),
        ] = None,
        directory: Annotated[
            bool,
            Query(description="Create the (empty) directory PATH instead; the body is ignored."),
        ] = False,
    ) -> dict[str, Any]:
        """Store the raw request body as PATH in the space, replacing a file there.

        The body is streamed to disk and the file appears only once all of it has arrived.
        Parent directories are created as needed.
        """
        _visible(store, space, who)
        return await receive_file(store, space, path, request, sha256=sha256, directory=directory)

    @api.get(
        "/{space}",
        summary="List a space's files",
        operation_id="ListFiles",
        response_model=ListFilesOut,
        responses={401: _ERROR, 404: _ERROR},
    )
    def list_files(space: str, store: Store, who: Who) -> dict[str, Any]:
        """Every file in the space with its size and hub:// URL."""
        _visible(store, space, who)
        try:
            found = store.list(space)
        except NoSuchSpace:
            raise _not_found(space) from None
        return {
            "files": [
                {"path": f.path, "size": f.size, "url": hub_url(space, f.path)} for f in found
            ]
        }

    @api.get(
        "/{space}/{path:path}",
        summary="Download a file",
        operation_id="DownloadFile",
        response_class=FileResponse,
        responses={
            200: {"content": _BINARY, "description": "The file's content."},
            206: {"content": _BINARY, "description": "The requested byte range."},
            400: _ERROR,
            401: _ERROR,
            404: _ERROR,
        },
    )
    def download(space: str, path: str, store: Store, who: Who) -> FileResponse:
        """The file's content, with Content-Length, ETag and Last-Modified; a `Range` header
        asks for part of it (206)."""
        _visible(store, space, who)
        return send_file(store, space, path)

    @api.delete(
        "/{space}",
        summary="Delete a space",
        operation_id="DeleteFileSpace",
        status_code=204,
        response_class=Response,
        responses={401: _ERROR, 404: _ERROR},
    )
    def delete_space(space: str, store: Store, who: Who) -> Response:
        """Remove the space and every file in it. Tasks that still name its files fail."""
        _visible(store, space, who)
        try:
            store.delete_space(space)
        except NoSuchSpace:
            raise _not_found(space) from None
        return Response(status_code=204)

    return api


async def receive_file(
    store: HubFileStore,
    space: str,
    path: str,
    request: Request,
    *,
    sha256: str | None,
    directory: bool,
) -> dict[str, Any]:
    """Store the request's body as ``path`` in ``space`` (see the upload route)."""
    if sha256 is not None and not _HEX64.fullmatch(sha256):
        raise HTTPException(400, "X-Content-SHA256: must be 64 hex digits")
    try:
        if directory:
            return _file_out(space, await run_in_threadpool(store.make_dir, space, path))
        with store.writing(space, path, sha256=sha256) as writer:
            pending = bytearray()
            async for chunk in request.stream():
                pending += chunk
                if len(pending) >= CHUNK:
                    await run_in_threadpool(writer.write, bytes(pending))
                    pending.clear()
            if pending:
                await run_in_threadpool(writer.write, bytes(pending))
    except BadPath as exc:
        raise _bad_path(exc) from None
    except NoSuchSpace:
        raise _not_found(space) from None
    except ChecksumMismatch as exc:
        raise HTTPException(400, f"X-Content-SHA256: {exc}") from None
    except ClientDisconnect:
        raise HTTPException(400, "the upload was cut off; nothing was kept") from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise HTTPException(507, f"the hub's file store is full: {reason}") from None
        # A directory where the file should go, or a file where a directory should.
        raise HTTPException(409, f"path: cannot write {path!r}: {reason}") from None
    stored = StoredFile(path=path.removesuffix("/"), size=writer.size, sha256=writer.hexdigest())
    return _file_out(space, stored)


def send_file(store: HubFileStore, space: str, path: str) -> FileResponse:
    """The file ``path`` of ``space`` (see the download route)."""
    try:
        host = store.path_in(space, path)
    except BadPath as exc:
        raise _bad_path(exc) from None
    except NoSuchSpace:
        raise _not_found(space) from None
    try:
        found = host.is_file()
    except OSError:  # e.g. a path through a file ("a.txt/b")
        found = False
    if not found:
        raise HTTPException(404, f"no file {path!r} in space {space!r}")
    return FileResponse(host, media_type="application/octet-stream")


def install(app: FastAPI) -> None:
    """Mount the files routes at :data:`PREFIX` (and list their methods for 405 answers)."""
    api = router()
    app.include_router(api, prefix=PREFIX)
    errors.record_methods(app, PREFIX, api.routes)
