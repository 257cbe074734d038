"""The site's tamper-evident audit log: hash-chained records, an append-only file, the checks.

Each record carries ``hash``, the SHA-256 of its own canonical JSON, and ``prev``, the hash of
the record before it (64 zeros for the first). Editing, removing, reordering or inserting a
record therefore breaks the chain where it happened, and :func:`verify` says where and how.

What the chain alone cannot show:

- Records cut from the *end*: the shorter log is still a valid chain. Pass ``expected_head``,
  the last ``(seq, hash)`` the hub received, to catch that.
- A *consistent* rewrite from some record on (every later hash recomputed). Without a key
  this is detected only against a copy held elsewhere: the hub's, through ``expected_head``
  or :func:`continue_from`. A log created with a key also stores
  ``mac = HMAC-SHA256(key, hash)`` in each record; nobody without the key can recompute it,
  so the key holder detects such a rewrite from the log alone. (Cutting the end still needs
  the hub's head, key or not.)

The canonical JSON of a record is every field except ``hash`` and ``mac``, with sorted keys,
no spaces, UTF-8 and ``ensure_ascii=False``; the mac is taken over the ASCII hex of ``hash``.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from toolferry.domain.errors import ToolferryError

__all__ = [
    "GENESIS",
    "AuditKind",
    "AuditLog",
    "AuditRecord",
    "BrokenAuditLog",
    "Detail",
    "Head",
    "Problem",
    "ProblemKind",
    "continue_from",
    "seal_record",
    "verify",
    "verify_file",
]

GENESIS = "0" * 64
Detail = str | int | bool | None
Head = tuple[int, str]  # (seq, hash) of a log's last record; (0, GENESIS) for an empty log


class AuditKind(StrEnum):
    DATA_ACCESS = "data_access"
    TASK_START = "task_start"
    TASK_END = "task_end"
    APPROVAL = "approval"
    OUTPUT_RELEASE = "output_release"
    OUTPUT_REJECT = "output_reject"
    POLICY_REFUSAL = "policy_refusal"
    ERROR = "error"


class ProblemKind(StrEnum):
    EDITED = "edited"
    REMOVED = "removed"
    REORDERED = "reordered"
    INSERTED = "inserted"
    TRUNCATED = "truncated"
    MALFORMED = "malformed"
    BAD_MAC = "bad_mac"
    CLOCK = "clock"  # a warning only: clocks are set back, records are still intact


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing :func:`verify` found: where (``seq`` and/or ``line``, 1-based) and what."""

    kind: ProblemKind
    message: str
    seq: int | None = None
    line: int | None = None

    @property
    def is_warning(self) -> bool:
        return self.kind is ProblemKind.CLOCK

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                f"line {self.line}" if self.line is not None else "",
                f"seq {self.seq}" if self.seq is not None else "",
            )
            if part
        )
        return f"{where}: {self.kind}: {self.message}" if where else f"{self.kind}: {self.message}"


class BrokenAuditLog(ToolferryError):
    """The log file cannot be continued (or read on) as it is; nothing was appended."""


_COVERED = ("seq", "time", "site", "kind", "task_id", "actor", "details", "prev")
_REQUIRED = frozenset((*_COVERED, "hash"))
_ALLOWED = _REQUIRED | {"mac"}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    seq: int
    time: str  # UTC, RFC 3339 with microseconds: 2025-01-31T12:00:00.000000Z
    site: str
    kind: AuditKind
    task_id: str | None
    actor: str  # a user, a steward, or "agent"
    details: dict[str, Detail] = field(hash=False)
    prev: str
    hash: str
    mac: str | None = None

    def covered(self) -> dict[str, Any]:
        """The fields ``hash`` is taken over."""
        return {name: getattr(self, name) for name in _COVERED}

    def computed_hash(self) -> str:
        return hashlib.sha256(_canonical(self.covered())).hexdigest()

    @property
    def timestamp(self) -> datetime:
        return datetime.fromisoformat(self.time)

    def to_dict(self) -> dict[str, Any]:
        return {**self.covered(), "kind": str(self.kind), "hash": self.hash, "mac": self.mac}

    def to_json(self) -> str:
        """One line of the log file (no newline)."""
        return _canonical(self.to_dict()).decode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        """A record from its JSON object, every field checked; ValueError says what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError("not a JSON object")
        if missing := _REQUIRED - data.keys():
            raise ValueError(f"missing field(s): {', '.join(sorted(missing))}")
        if extra := data.keys() - _ALLOWED:
            raise ValueError(f"unexpected field(s): {', '.join(sorted(map(str, extra)))}")
        seq, kind, mac = data["seq"], data["kind"], data.get("mac")
        if type(seq) is not int or seq < 1:
            raise ValueError(f"seq must be a positive integer, not {seq!r}")
        if not isinstance(kind, str) or kind not in AuditKind._value2member_map_:
            raise ValueError(f"unknown kind {kind!r}")
        if not (isinstance(data["task_id"], str) or data["task_id"] is None):
            raise ValueError("task_id must be a string or null")
        for name in ("prev", "hash"):
            if not isinstance(data[name], str) or not _HEX64.fullmatch(data[name]):
                raise ValueError(f"{name} must be 64 lowercase hex digits")
        if mac is not None and (not isinstance(mac, str) or not _HEX64.fullmatch(mac)):
            raise ValueError("mac must be 64 lowercase hex digits or null")
        record = cls(
            seq=seq,
            time=_check_time(data["time"]),
            site=_text(data, "site"),
            kind=AuditKind(kind),
            task_id=data["task_id"],
            actor=_text(data, "actor"),
            details=_check_details(data["details"]),
            prev=data["prev"],
            hash=data["hash"],
            mac=mac,
        )
        try:
            record.computed_hash()
        except UnicodeEncodeError as exc:  # a lone surrogate cannot be hashed as UTF-8
            raise ValueError(f"text that is not valid Unicode: {exc.reason}") from None
        return record


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _check_time(value: Any) -> str:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(f"time must be RFC 3339 with a zone, not {value!r}")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"time {value!r} is not a valid date and time") from None
    return value


def _check_details(value: Any) -> dict[str, Detail]:
    if not isinstance(value, Mapping):
        raise ValueError("details must be an object")
    clean: dict[str, Detail] = {}
    for name, item in value.items():
        if not isinstance(name, str):
            raise ValueError(f"details key {name!r} is not a string")
        # bool before int (a bool is an int); floats are refused: their JSON text is not canonical
        if item is None or isinstance(item, bool):
            clean[name] = item
        elif isinstance(item, int):
            clean[name] = int(item)
        elif isinstance(item, str):
            clean[name] = str(item)
        else:
            raise ValueError(f"details[{name!r}] must be a string, integer, boolean or null")
    return clean


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seal_record(
    *,
    seq: int,
    time: str,
    site: str,
    kind: AuditKind | str,
    task_id: str | None,
    actor: str,
    details: Mapping[str, Detail],
    prev: str,
    key: bytes | None = None,
) -> AuditRecord:
    """A checked record with its ``hash`` (and ``mac`` when given the key) computed.

    This is how :class:`AuditLog` writes a record, and how a hub or a test builds one.
    """
    covered: dict[str, Any] = {
        "seq": seq,
        "time": time,
        "site": site,
        "kind": str(kind),
        "task_id": task_id,
        "actor": actor,
        "details": _check_details(details),
        "prev": prev,
    }
    digest = hashlib.sha256(_canonical(covered)).hexdigest()
    mac = _mac(key, digest) if key is not None else None
    return AuditRecord.from_dict({**covered, "hash": digest, "mac": mac})


def _as_record(item: AuditRecord | Mapping[str, Any]) -> AuditRecord:
    # Records built in code are checked like parsed ones: a dataclass does not check its fields.
    return AuditRecord.from_dict(item.to_dict() if isinstance(item, AuditRecord) else item)


# --- checks ---------------------------------------------------------------------------------

_Entry = tuple[int, AuditRecord]  # (line or position, 1-based; record)


def verify(
    records: Iterable[AuditRecord | Mapping[str, Any]],
    *,
    key: bytes | None = None,
    expected_head: Head | None = None,
) -> list[Problem]:
    """Every problem in a whole log, in order; an empty list means the log is intact.

    ``line`` in a problem is the position of the record in ``records`` (1-based). With
    ``key``, every record must carry a matching mac. With ``expected_head`` (the last
    ``(seq, hash)`` the hub received), a log that ends before it or holds another record at
    that seq is reported: the end was cut or rewritten. The records are held in memory.
    """
    problems: list[Problem] = []
    entries = _parse(enumerate(records, 1), problems)
    problems += _check_chain(entries, (0, GENESIS), key)
    if expected_head is not None:
        problems += _check_head(entries, expected_head)
    return _in_order(problems)


def verify_file(
    path: Path, key: bytes | None = None, expected_head: Head | None = None
) -> list[Problem]:
    """:func:`verify` for a log file; ``line`` is the line number in the file.

    A line that is not JSON, lacks fields or is cut short (a crash while writing) is
    reported as malformed and the chain is checked across it. A live log may be verified
    while an agent appends to it: only whole appends are read.
    """
    problems: list[Problem] = []
    items: list[tuple[int, Any]] = []
    with path.open("rb") as file:
        for number, raw, complete in _read_lines(file.fileno(), _locked_size(file.fileno())):
            if not complete:
                problems.append(_malformed(number, "the last line is incomplete (cut short)"))
                continue
            try:
                items.append((number, json.loads(raw)))
            except ValueError as exc:  # UnicodeDecodeError is a ValueError too
                problems.append(_malformed(number, f"not valid JSON: {exc}"))
    entries = _parse(items, problems)
    problems += _check_chain(entries, (0, GENESIS), key)
    if expected_head is not None:
        problems += _check_head(entries, expected_head)
    return _in_order(problems)


def continue_from(
    held: Head | Iterable[AuditRecord | Mapping[str, Any]],
    batch: Iterable[AuditRecord | Mapping[str, Any]],
    *,
    key: bytes | None = None,
) -> list[Problem]:
    """What is wrong with ``batch`` as the next records after ``held``; [] if it continues.

    For the hub: ``held`` is the records it already holds (only the last one is used) or
    just their head ``(seq, hash)``. The batch must start right after that head, with no
    overlap: an agent ships ``AuditLog.records(after_seq=<the hub's head seq>)``. A batch
    whose first record does not follow the hub's head means the agent's log was cut or
    rewritten since the hub last saw it. ``line`` in a problem is the position in the batch.
    """
    problems: list[Problem] = []
    entries = _parse(enumerate(batch, 1), problems)
    head = _head_of(held)
    if entries and entries[0][1].seq <= head[0]:
        line, first = entries[0]
        message = (
            f"the batch starts at seq {first.seq}, but the hub holds the log up to seq "
            f"{head[0]}: send the records after it"
        )
        return [Problem(kind=ProblemKind.REORDERED, message=message, seq=first.seq, line=line)]
    problems += _check_chain(entries, head, key)
    return _in_order(problems)


def _head_of(held: Head | Iterable[AuditRecord | Mapping[str, Any]]) -> Head:
    if isinstance(held, tuple) and len(held) == 2 and isinstance(held[0], int):
        seq, digest = held
        if not isinstance(digest, str):
            raise TypeError("a head is (seq, hash)")
        return seq, digest
    last: AuditRecord | Mapping[str, Any] | None = None
    for last in held:  # noqa: B007 - only the last one is wanted
        pass
    if last is None:
        return 0, GENESIS
    record = _as_record(last)
    return record.seq, record.hash


def _malformed(line: int, message: str) -> Problem:
    return Problem(kind=ProblemKind.MALFORMED, message=message, line=line)


def _parse(items: Iterable[tuple[int, Any]], problems: list[Problem]) -> list[_Entry]:
    entries: list[_Entry] = []
    for line, item in items:
        try:
            entries.append((line, _as_record(item)))
        except ValueError as exc:
            problems.append(_malformed(line, str(exc)))
    return entries


def _in_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: float("inf") if p.line is None else p.line)


def _seqs(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seqs {first}..{last}"


def _check_chain(entries: list[_Entry], anchor: Head, key: bytes | None) -> list[Problem]:
    """Walk the records in order, following the chain from ``anchor``, and say what broke it.

    ``pred`` is the last record accepted on the chain (-1: the anchor). A record out of place
    is reported once and left aside ("displaced"), so the records after it that do link up
    are not reported again.
    """
    lines = [line for line, _ in entries]
    recs = [record for _, record in entries]
    problems: list[Problem] = []
    first_at: dict[str, int] = {anchor[1]: -1}
    for i, record in enumerate(recs):
        first_at.setdefault(record.hash, i)
    followed = {record.prev for record in recs}  # hashes some record names as its prev

    def report(i: int, kind: ProblemKind, message: str) -> None:
        problems.append(Problem(kind=kind, message=message, seq=recs[i].seq, line=lines[i]))

    def name(i: int) -> str:
        if i >= 0:
            return f"seq {recs[i].seq} (line {lines[i]})"
        return "the start of the log" if anchor[0] == 0 else f"the hub's head (seq {anchor[0]})"

    def seq_of(i: int) -> int:
        return recs[i].seq if i >= 0 else anchor[0]

    def hash_of(i: int) -> str:
        return recs[i].hash if i >= 0 else anchor[1]

    edited: set[int] = set()
    for i, record in enumerate(recs):
        if record.computed_hash() != record.hash:
            edited.add(i)
            report(i, ProblemKind.EDITED, "the content does not match its hash: it was edited")
        if key is not None:
            if record.mac is None:
                report(i, ProblemKind.BAD_MAC, "no mac, but the log is checked with a key")
            elif not hmac.compare_digest(record.mac, _mac(key, record.hash)):
                report(i, ProblemKind.BAD_MAC, "the mac does not match: written without the key")

    pred = -1
    successor: dict[int, int] = {}  # accepted chain links: predecessor -> record
    displaced: set[int] = set()

    def accept(i: int, p: int) -> None:
        nonlocal pred
        if recs[i].seq != seq_of(p) + 1 and i not in edited:
            report(i, ProblemKind.EDITED, f"seq {recs[i].seq} follows {name(p)}")
        if p >= 0 and recs[i].timestamp < recs[p].timestamp:
            report(i, ProblemKind.CLOCK, f"time {recs[i].time} is before that of {name(p)}")
        successor[p] = i
        pred = i

    for i, record in enumerate(recs):
        if first_at[record.hash] != i:
            report(i, ProblemKind.INSERTED, f"a copy of {name(first_at[record.hash])}")
            continue
        if record.prev == hash_of(pred):
            accept(i, pred)
            continue
        p = first_at.get(record.prev)
        if p is None:  # it names a record that is not here
            if i + 1 < len(recs) and recs[i + 1].prev == hash_of(pred):
                report(i, ProblemKind.INSERTED, f"forged: the next record follows {name(pred)}")
                displaced.add(i)
            elif record.seq > seq_of(pred) + 1:
                missing = _seqs(seq_of(pred) + 1, record.seq - 1)
                report(i, ProblemKind.REMOVED, f"{missing} missing after {name(pred)}")
                pred = i
            elif record.hash in followed:
                report(
                    i,
                    ProblemKind.EDITED,
                    f"does not follow {name(pred)}: that record was changed and re-hashed, "
                    "or replaced",
                )
                pred = i
            else:
                report(
                    i, ProblemKind.INSERTED, f"forged, or {name(pred)} was changed and re-hashed"
                )
                displaced.add(i)
        elif p > i:
            report(i, ProblemKind.REORDERED, f"comes before {name(p)}, the record it follows")
            displaced.add(i)
        elif p in displaced:  # the chain resumes after a record already reported out of place
            accept(i, p)
        elif p in successor:  # a fork: two records claim the same predecessor
            c = successor[p]
            if recs[c].hash not in followed and record.hash in followed:
                problems.append(
                    Problem(
                        kind=ProblemKind.INSERTED,
                        message=f"{name(i)} also follows {name(p)}, and the chain goes on from it",
                        seq=recs[c].seq,
                        line=lines[c],
                    )
                )
                displaced.add(c)
                accept(i, p)
            else:
                report(i, ProblemKind.INSERTED, f"follows {name(p)}, as {name(c)} does")
                displaced.add(i)
        else:
            report(i, ProblemKind.REORDERED, f"belongs right after {name(p)}")
            displaced.add(i)
    return problems


def _check_head(entries: list[_Entry], head: Head) -> list[Problem]:
    seq, digest = head
    if seq == 0:
        return []
    at_seq = [(line, record) for line, record in entries if record.seq == seq]
    if any(record.hash == digest for _, record in at_seq):
        return []
    if at_seq:
        line, _ = at_seq[0]
        message = "differs from the hub's copy: the log was rewritten from here on"
        return [Problem(kind=ProblemKind.EDITED, message=message, seq=seq, line=line)]
    last = max((record.seq for _, record in entries), default=0)
    if last < seq:
        message = f"the log ends at seq {last}, but the hub holds it up to seq {seq}: cut"
        return [Problem(kind=ProblemKind.TRUNCATED, message=message)]
    message = f"seq {seq}, the last one the hub received, is not in the log"
    return [Problem(kind=ProblemKind.REMOVED, message=message, seq=seq)]


# --- the file -------------------------------------------------------------------------------

_registry = threading.Lock()
_file_locks: dict[tuple[int, int], threading.Lock] = {}


def _file_lock(fd: int) -> threading.Lock:
    # One lock per file in this process. flock alone does not exclude threads sharing one
    # descriptor, and a second flock call on it would convert (then drop) the first's lock.
    stat = os.fstat(fd)
    with _registry:
        return _file_locks.setdefault((stat.st_dev, stat.st_ino), threading.Lock())


def _locked_size(fd: int) -> int:
    """The file's size once no process is in the middle of an append to it."""
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        return os.fstat(fd).st_size
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _read_lines(fd: int, size: int) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line without its newline, whether it had one) for the first ``size`` bytes."""
    offset, rest, number = 0, b"", 0
    while offset < size:
        chunk = os.pread(fd, min(1 << 16, size - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        *whole, rest = (rest + chunk).split(b"\n")
        for line in whole:
            number += 1
            yield number, line, True
    if rest:
        yield number + 1, rest, False


class AuditLog:
    """An append-only JSON-lines audit log of one site; safe across threads and processes.

    Each append locks the file (``flock``), continues the chain from the last record,
    writes one line through an ``O_APPEND`` descriptor and fsyncs before returning. A log
    whose last line is cut short or is not a valid record of this site (under this key, or
    without one) is never continued: :meth:`append` raises :class:`BrokenAuditLog` rather
    than fork the chain. With ``key``, every record also gets a mac: without one, a tail
    rewritten consistently is only detected against the hub's copy (see the module docstring).
    """

    def __init__(self, path: Path, site: str, key: bytes | None = None) -> None:
        if not site:
            raise ValueError("site must be a non-empty string")
        self.path = path
        self.site = site
        self._key = key
        created = not path.exists()
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if created:  # the new directory entry must survive a crash too
            directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        self._lock = _file_lock(self._fd)
        self._last: tuple[int, AuditRecord | None] | None = None  # (file size, its last record)
        # A broken tail is reported by append and head; records() still reads the rest.
        with self._exclusive(), suppress(BrokenAuditLog):
            self._tail()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def append(
        self,
        kind: AuditKind | str,
        *,
        task_id: str | None = None,
        actor: str,
        details: Mapping[str, Detail] | None = None,
    ) -> AuditRecord:
        """Write the next record and fsync it; ValueError for a bad field, nothing written."""
        kind = AuditKind(kind)
        clean = _check_details(details or {})
        with self._exclusive():
            last = self._tail()
            record = seal_record(
                seq=last.seq + 1 if last else 1,
                time=_now(),
                site=self.site,
                kind=kind,
                task_id=task_id,
                actor=actor,
                details=clean,
                prev=last.hash if last else GENESIS,
                key=self._key,
            )
            data = memoryview(f"{record.to_json()}\n".encode())
            while data:
                data = data[os.write(self._fd, data) :]
            os.fsync(self._fd)
            self._last = (os.fstat(self._fd).st_size, record)
        return record

    def head(self) -> Head:
        """(seq, hash) of the last record; (0, GENESIS) when empty. BrokenAuditLog if broken."""
        with self._exclusive():
            last = self._tail()
        return (last.seq, last.hash) if last else (0, GENESIS)

    def records(self, after_seq: int = 0) -> Iterator[AuditRecord]:
        """The records with seq > ``after_seq``, in file order, as they were when called.

        Raises BrokenAuditLog at the first line that is not a record (after yielding those
        before it): ship the intact part, and run :func:`verify_file` to see the rest.
        """
        with self._exclusive():
            size = os.fstat(self._fd).st_size
        for number, raw, complete in _read_lines(self._fd, size):
            try:
                if not complete:
                    raise ValueError("incomplete (cut short)")
                record = AuditRecord.from_dict(json.loads(raw))
            except ValueError as exc:
                raise BrokenAuditLog(f"{self.path}: line {number} is not a record: {exc}") from None
            if record.seq > after_seq:
                yield record

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        if self._fd < 0:
            raise ValueError(f"{self.path}: the audit log is closed")
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _tail(self) -> AuditRecord | None:
        """The last record, checked; None for an empty log. Call with the file locked."""
        size = os.fstat(self._fd).st_size
        if self._last is not None and self._last[0] == size:
            return self._last[1]  # nobody appended since we last looked
        record = self._read_last(size) if size else None
        self._last = (size, record)
        return record

    def _read_last(self, size: int) -> AuditRecord:
        hint = f"check it with `toolferry audit verify {self.path}`, then move it aside"
        chunk = 4096
        while True:
            n = min(size, chunk)
            data = os.pread(self._fd, n, size - n)
            if not data.endswith(b"\n"):
                raise BrokenAuditLog(
                    f"{self.path}: the last line is incomplete (cut short by a crash?); "
                    f"appending would fork the chain: {hint}"
                )
            start = data.rfind(b"\n", 0, len(data) - 1)
            if start >= 0 or n == size:
                line = data[start + 1 : -1]
                break
            chunk *= 4
        try:
            record = AuditRecord.from_dict(json.loads(line))
        except ValueError as exc:
            raise BrokenAuditLog(
                f"{self.path}: the last line is not a record ({exc}): {hint}"
            ) from None
        if record.computed_hash() != record.hash:
            raise BrokenAuditLog(f"{self.path}: the last record was edited: {hint}")
        if record.site != self.site:
            raise BrokenAuditLog(f"{self.path}: the log of site {record.site!r}, not {self.site!r}")
        if self._key is None and record.mac is not None:
            raise BrokenAuditLog(f"{self.path}: the log has macs: open it with its key")
        if self._key is not None and record.mac is None:
            raise BrokenAuditLog(f"{self.path}: the log has no macs: a key cannot be added to it")
        if self._key is not None and not hmac.compare_digest(
            record.mac or "", _mac(self._key, record.hash)
        ):
            raise BrokenAuditLog(f"{self.path}: the last record's mac does not match this key")
        return record
