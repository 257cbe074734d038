"""ListIdentifiers and ListRecords: selective harvesting, in pages with resumption tokens.

Items come in harvest order (see :func:`harvest_order`); a token holds the position after the
last item handed out, so items changed meanwhile come later rather than being skipped.
``completeListSize`` is what was handed out plus what is left, as of this page.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime

from toolferry.catalogue.oai import tokens
from toolferry.catalogue.oai.arguments import EXCLUSIVE
from toolferry.catalogue.oai.dates import datestamp, parse_range
from toolferry.catalogue.oai.errors import ErrorCode, OaiError
from toolferry.catalogue.oai.items import add_header, add_record, metadata_format
from toolferry.catalogue.oai.records import Key, Record, Records, harvest_order
from toolferry.catalogue.oai.repository import Repository
from toolferry.catalogue.oai.sets import in_set
from toolferry.catalogue.oai.xmltree import add, qname

__all__ = ["lister"]


def lister(verb: str) -> Callable[[dict[str, str], Repository, Records, datetime], ET.Element]:
    """The answer to ``verb`` (ListIdentifiers or ListRecords): a first request names
    metadataPrefix and optionally from, until and set; a later one only its token."""

    def answer(
        args: dict[str, str], repository: Repository, records: Records, now: datetime
    ) -> ET.Element:
        after: Key | None = None
        cursor = 0
        if EXCLUSIVE in args:
            token = tokens.decode(args[EXCLUSIVE], repository.repository_id, verb=verb, now=now)
            query, after, cursor = token.query, token.after, token.cursor
        else:
            query = tokens.ListQuery(
                verb=verb,
                prefix=args["metadataPrefix"],
                from_=args.get("from"),
                until=args.get("until"),
                set=args.get("set"),
            )
        fmt = metadata_format(query.prefix)
        span = parse_range(query.from_, query.until)
        remaining = [
            r
            for r in harvest_order(records())
            if span.contains(r.updated)
            and (query.set is None or in_set(query.set, r.sets))
            and (after is None or r.key > after)
        ]
        if not remaining:
            raise OaiError(
                ErrorCode.NO_RECORDS_MATCH,
                "no records match" if after is None else "no records are left to harvest",
            )
        page = remaining[: repository.page_size]
        body = ET.Element(qname("oai", verb))
        for record in page:
            if verb == "ListRecords":
                add_record(body, record, fmt, repository)
            else:
                add_header(body, record)
        more = len(remaining) > len(page)
        if more or after is not None:
            _resumption(body, repository, query, page, cursor, len(remaining), more, now)
        return body

    return answer


def _resumption(
    body: ET.Element,
    repository: Repository,
    query: tokens.ListQuery,
    page: list[Record],
    cursor: int,
    remaining: int,
    more: bool,
    now: datetime,
) -> None:
    """A token for what follows ``page``; empty on the page that completes the list."""
    attrs = {"completeListSize": str(cursor + remaining), "cursor": str(cursor)}
    text = ""
    if more:
        expires = now + repository.token_lifetime
        token = tokens.Token(
            query=query,
            after=page[-1].key,
            cursor=cursor + len(page),
            expires=expires,
        )
        text = tokens.encode(token, repository.repository_id)
        attrs["expirationDate"] = datestamp(expires)
    add(body, "resumptionToken", text, attrs)
