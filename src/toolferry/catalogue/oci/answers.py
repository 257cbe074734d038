"""What a registry's answers mean: its error bodies in words, and statuses as domain errors.

The distribution spec's error body is ``{"errors": [{"code", "message", "detail"}]}``; the
message shown to users is ``CODE: message`` of each, so the registry's own reason travels up.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

from toolferry.catalogue.oci.errors import StoreError
from toolferry.domain.errors import Conflict, Forbidden, InvalidTask, NotFound

__all__ = ["error_message", "json_body", "raise_for_status", "transport_cause"]

# Error codes of the distribution spec that mean the request was wrong, and the field at fault.
_BAD_INPUT_FIELD = {
    "DIGEST_INVALID": "digest",
    "SIZE_INVALID": "size",
    "NAME_INVALID": "repository",
    "TAG_INVALID": "tag",
    "MANIFEST_INVALID": "manifest",
    "MANIFEST_UNVERIFIED": "manifest",
    "MANIFEST_BLOB_UNKNOWN": "manifest",
    "BLOB_UNKNOWN": "manifest",
}
_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


def _errors(response: httpx.Response) -> list[Mapping[str, Any]]:
    with contextlib.suppress(httpx.HTTPError):
        response.read()
    with contextlib.suppress(ValueError, AttributeError, httpx.ResponseNotRead):
        errors = json.loads(response.content).get("errors")
        if isinstance(errors, list):
            return [e for e in errors if isinstance(e, Mapping)]
    return []


def error_message(response: httpx.Response) -> str:
    """The registry's own words: ``CODE: message`` of each error in the body, else its text."""
    errors = _errors(response)
    if errors:
        parts = (": ".join(str(e[k]) for k in ("code", "message") if e.get(k)) for e in errors)
        return "; ".join(p for p in parts if p)
    with contextlib.suppress(httpx.ResponseNotRead, UnicodeDecodeError):
        return response.text.strip()[:300]
    return ""


def raise_for_status(response: httpx.Response, registry: str, what: str) -> None:
    """Raises the domain error ``response``'s status stands for, naming ``what`` was asked."""
    status = response.status_code
    message = error_message(response) or f"HTTP {status} {response.reason_phrase}"
    refused = f"registry {registry} refused {what}: {message}"
    if status == 404:
        raise NotFound(f"{what} not found in registry {registry} ({message})")
    if status in (401, 403):
        raise Forbidden(refused)
    if status == 405:
        raise Forbidden(f"registry {registry} does not allow {what}: {message}")
    if status == 409:
        raise Conflict(refused)
    if status == 400:
        codes = [str(e.get("code")) for e in _errors(response)]
        field = next((_BAD_INPUT_FIELD[c] for c in codes if c in _BAD_INPUT_FIELD), "request")
        raise InvalidTask(field, refused)
    raise StoreError(f"registry {registry} failed {what}: {message}")


def json_body(response: httpx.Response, what: str) -> dict[str, Any]:
    """The answer's JSON object, or StoreError saying it is not one."""
    try:
        body = json.loads(response.content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        raise StoreError(f"{response.request.url.host} answered {what} with something not JSON")
    return body


def transport_cause(exc: httpx.TransportError) -> str:
    """The innermost cause of a failed connection in words (``Connection refused``)."""
    cause: BaseException = exc
    while (inner := cause.__cause__ or cause.__context__) is not None:
        cause = inner
    return _ERRNO.sub("", str(cause) or str(exc) or type(exc).__name__)
