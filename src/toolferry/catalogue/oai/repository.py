"""What a response says about the repository itself: names, base URL, paging."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["REPOSITORY_ID", "Repository"]

# The oai-identifier scheme's repositoryIdentifier: a domain name.
REPOSITORY_ID = re.compile(r"[a-zA-Z][a-zA-Z0-9\-]*(?:\.[a-zA-Z][a-zA-Z0-9\-]*)+")
_EMAIL = re.compile(r"\S+@(?:\S+\.)+\S+")


@dataclass(frozen=True, kw_only=True)
class Repository:
    name: str
    base_url: str  # where the protocol answers, e.g. https://hub.example.org/oai
    repository_id: str  # e.g. hub.example.org: identifiers are oai:<repository_id>:<name>:<version>
    admin_emails: tuple[str, ...]
    # Where the REST API shows a version: <catalogue_url>/<name>/versions/<version>.
    catalogue_url: str | None = None
    page_size: int = 100  # records or headers per incomplete list
    token_lifetime: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        if not REPOSITORY_ID.fullmatch(self.repository_id):
            raise ValueError(
                f"OAI repository id {self.repository_id!r} must be a domain name like "
                "'hub.example.org' (letters first in each label)"
            )
        if not self.admin_emails or not all(_EMAIL.fullmatch(e) for e in self.admin_emails):
            raise ValueError(f"OAI admin e-mails {self.admin_emails!r}: give at least one address")
        if self.page_size < 1:
            raise ValueError("the OAI page size must be at least 1")
        if self.token_lifetime <= timedelta(0):
            raise ValueError("the OAI resumption token lifetime must be positive")

    @property
    def native_schema_url(self) -> str:
        return f"{self.base_url}/schema/environment-1.xsd"
