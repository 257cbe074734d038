"""Facts about a version's published content, read from the artifact when it is imported."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from toolferry.domain.environment.checks import check_aware, clean_opt_text, set_field
from toolferry.domain.errors import InvalidTask

_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")


@dataclass(frozen=True, kw_only=True)
class ContentInfo:
    """What the artifact is: its media type (OCI manifest, disk format), size in bytes, when
    it was built (ViCE ``created``: the image's creation, not its publication) and, for
    images, its platform (``os/architecture[/variant]``)."""

    media_type: str | None = None
    size_bytes: int | None = None
    created: datetime | None = None
    platform: str | None = None
    virtual_size_bytes: int | None = None  # VM disks: the size the guest sees

    def __post_init__(self) -> None:
        set_field(self, "media_type", clean_opt_text(self.media_type, "media_type"))
        for name in ("size_bytes", "virtual_size_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise InvalidTask(name, "must be an integer of at least 0")
        if self.created is not None:
            check_aware(self.created, "created")
        if self.platform is not None and not _PLATFORM.fullmatch(self.platform):
            raise InvalidTask("platform", f"{self.platform!r} is not 'os/architecture[/variant]'")
