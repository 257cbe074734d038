"""Links between pages of a list: keyset paging with the store's page tokens (no OFFSET, no
COUNT), so the first page and the thousandth cost the same."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode


def page_link(path: str, filters: Mapping[str, str | None], page_token: str | None = None) -> str:
    """``path`` with the non-empty ``filters`` and ``page_token`` as its query string."""
    params = {k: v for k, v in filters.items() if v}
    if page_token:
        params["page_token"] = page_token
    return f"{path}?{urlencode(params)}" if params else path


def links(
    path: str,
    filters: Mapping[str, str | None],
    *,
    current_token: str | None,
    next_token: str | None,
) -> dict[str, str | None]:
    """``first`` (None on the first page) and ``next`` (None on the last)."""
    return {
        "first": page_link(path, filters) if current_token else None,
        "next": page_link(path, filters, next_token) if next_token else None,
    }
