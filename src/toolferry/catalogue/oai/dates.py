"""UTC datestamps at seconds granularity, and the ``from``/``until`` arguments (day or seconds)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from toolferry.catalogue.oai.errors import ErrorCode, OaiError

__all__ = ["GRANULARITY", "DateRange", "datestamp", "parse_range", "truncate"]

GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SECONDS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def truncate(moment: datetime) -> datetime:
    """``moment`` in UTC, without its fraction of a second: what a datestamp shows."""
    return moment.astimezone(UTC).replace(microsecond=0)


def datestamp(moment: datetime) -> str:
    return truncate(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Bound:
    moment: datetime  # the first second the bound names
    day: bool  # day granularity: the bound names a whole day


def _parse(text: str, name: str) -> _Bound:
    try:
        if _DAY.fullmatch(text):
            day = date.fromisoformat(text)
            return _Bound(datetime.combine(day, time(), tzinfo=UTC), day=True)
        if _SECONDS.fullmatch(text):
            moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            return _Bound(moment, day=False)
    except ValueError:
        pass
    raise OaiError(
        ErrorCode.BAD_ARGUMENT,
        f"{name}={text!r} is not a UTC date 'YYYY-MM-DD' or 'YYYY-MM-DDThh:mm:ssZ'",
        argument=name,
    )


@dataclass(frozen=True)
class DateRange:
    """Inclusive bounds on truncated datestamps; ``None`` is open."""

    start: datetime | None = None
    end: datetime | None = None  # the last second included

    def contains(self, moment: datetime) -> bool:
        stamp = truncate(moment)
        return (self.start is None or stamp >= self.start) and (
            self.end is None or stamp <= self.end
        )


def parse_range(from_text: str | None, until_text: str | None) -> DateRange:
    """The range ``from``/``until`` name; badArgument for bad syntax, mixed granularities
    or ``from`` after ``until``. A day ``until`` includes that whole day."""
    lower = _parse(from_text, "from") if from_text is not None else None
    upper = _parse(until_text, "until") if until_text is not None else None
    if lower is not None and upper is not None:
        if lower.day != upper.day:
            raise OaiError(
                ErrorCode.BAD_ARGUMENT,
                f"from={from_text!r} and until={until_text!r} must have the same granularity",
            )
        if lower.moment > upper.moment:
            raise OaiError(
                ErrorCode.BAD_ARGUMENT, f"from={from_text!r} is after until={until_text!r}"
            )
    end = None
    if upper is not None:
        end = upper.moment + timedelta(days=1, seconds=-1) if upper.day else upper.moment
    return DateRange(start=lower.moment if lower else None, end=end)
