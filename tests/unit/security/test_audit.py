"""The hash-chained audit log: appends across objects, threads and processes, and every tampering."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from itertools import pairwise
from pathlib import Path

import pytest

from toolferry.security.audit import (
    GENESIS,
    AuditKind,
    AuditLog,
    AuditRecord,
    BrokenAuditLog,
    Problem,
    ProblemKind,
    continue_from,
    seal_record,
    verify,
    verify_file,
)

SITE = "site-a"
KEY = b"k" * 32


def fill(path: Path, count: int = 50, key: bytes | None = None) -> list[AuditRecord]:
    """``count`` records, the first half by one AuditLog, the rest by a second on the same file."""
    kinds = list(AuditKind)
    written = []
    half = count // 2
    for start, stop in ((0, half), (half, count)):
        with AuditLog(path, SITE, key=key) as log:
            for i in range(start, stop):
                written.append(
                    log.append(
                        kinds[i % len(kinds)],
                        task_id=f"task-{i // 5}",
                        actor="agent" if i % 2 else "steward",
                        details={"dataset": "cohort", "i": i, "ok": True, "note": None},
                    )
                )
    return written


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write(path: Path, content: list[bytes]) -> None:
    path.write_bytes(b"".join(content))


def rewrite(line: bytes, **changes: object) -> bytes:
    """The line with fields changed, the stored hash kept (an edit by hand)."""
    return (json.dumps({**json.loads(line), **changes}) + "\n").encode()


def found(problems: list[Problem]) -> list[tuple[ProblemKind, int | None]]:
    return [(p.kind, p.seq) for p in problems]


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    fill(path)
    return path


def test_two_objects_continue_one_chain(log_file: Path) -> None:
    assert verify_file(log_file) == []
    with AuditLog(log_file, SITE) as log:
        records = list(log.records())
        assert [r.seq for r in records] == list(range(1, 51))
        assert records[0].prev == GENESIS
        assert all(b.prev == a.hash for a, b in pairwise(records))
        assert log.head() == (50, records[-1].hash)
        assert [r.seq for r in log.records(after_seq=45)] == [46, 47, 48, 49, 50]
    assert verify(records) == []
    assert verify([r.to_dict() for r in records]) == []
    first = records[0]
    assert first.kind is AuditKind.DATA_ACCESS and first.site == SITE and first.mac is None
    assert first.details == {"dataset": "cohort", "i": 0, "ok": True, "note": None}
    assert first.time.endswith("Z") and len(first.time) == len("2025-01-31T12:00:00.000000Z")


def test_lines_are_canonical_and_hash_covers_every_other_field(log_file: Path) -> None:
    raw = lines(log_file)[0].rstrip(b"\n")
    data = json.loads(raw)
    assert set(data) == {
        "seq",
        "time",
        "site",
        "kind",
        "task_id",
        "actor",
        "details",
        "prev",
        "hash",
        "mac",
    }
    covered = {k: v for k, v in data.items() if k not in ("hash", "mac")}
    text = json.dumps(covered, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert data["hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert raw == json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def test_edited_detail_value(log_file: Path) -> None:
    content = lines(log_file)
    data = json.loads(content[19])
    content[19] = rewrite(content[19], details={**data["details"], "dataset": "other"})
    write(log_file, content)
    problems = verify_file(log_file)
    assert found(problems) == [(ProblemKind.EDITED, 20)]
    assert problems[0].line == 20 and "hash" in problems[0].message


def test_edited_kind(log_file: Path) -> None:
    content = lines(log_file)
    assert json.loads(content[9])["kind"] != "approval"
    content[9] = rewrite(content[9], kind="approval")
    write(log_file, content)
    assert found(verify_file(log_file)) == [(ProblemKind.EDITED, 10)]


def test_removed_middle_line(log_file: Path) -> None:
    content = lines(log_file)
    del content[24]  # seq 25
    write(log_file, content)
    problems = verify_file(log_file)
    assert found(problems) == [(ProblemKind.REMOVED, 26)]
    assert "seq 25 missing" in problems[0].message


def test_removed_several_lines_and_the_first(log_file: Path) -> None:
    content = lines(log_file)
    del content[30:33]  # seqs 31..33
    del content[0]
    write(log_file, content)
    problems = verify_file(log_file)
    assert found(problems) == [(ProblemKind.REMOVED, 2), (ProblemKind.REMOVED, 34)]
    assert "seqs 31..33 missing" in problems[1].message


def test_swapped_lines(log_file: Path) -> None:
    content = lines(log_file)
    content[14], content[15] = content[15], content[14]  # seqs 15 and 16
    write(log_file, content)
    problems = verify_file(log_file)
    assert found(problems) == [(ProblemKind.REORDERED, 16)]
    assert problems[0].line == 15


def test_moved_line(log_file: Path) -> None:
    content = lines(log_file)
    content.insert(30, content.pop(9))  # seq 10 now after seq 31
    write(log_file, content)
    assert {p.kind for p in verify_file(log_file)} == {ProblemKind.REORDERED}


def test_forged_line_with_a_correct_own_hash(log_file: Path) -> None:
    content = lines(log_file)
    genuine = AuditRecord.from_dict(json.loads(content[24]))
    forged = seal_record(
        seq=26,
        time=genuine.time,
        site=SITE,
        kind=AuditKind.OUTPUT_RELEASE,
        task_id="task-5",
        actor="steward",
        details={"output": "s3://out/all-the-data"},
        prev="ab" * 32,
    )
    assert forged.computed_hash() == forged.hash
    content.insert(25, f"{forged.to_json()}\n".encode())
    write(log_file, content)
    problems = verify_file(log_file)
    assert [(p.kind, p.line) for p in problems] == [(ProblemKind.INSERTED, 26)]


def test_forged_line_that_names_the_right_predecessor(log_file: Path) -> None:
    content = lines(log_file)
    genuine = AuditRecord.from_dict(json.loads(content[24]))
    forged = seal_record(
        seq=26,
        time=genuine.time,
        site=SITE,
        kind=AuditKind.APPROVAL,
        task_id=None,
        actor="steward",
        details={},
        prev=genuine.hash,
    )
    content.insert(25, f"{forged.to_json()}\n".encode())
    write(log_file, content)
    problems = verify_file(log_file)
    assert [(p.kind, p.line) for p in problems] == [(ProblemKind.INSERTED, 26)]


def test_copied_line(log_file: Path) -> None:
    content = lines(log_file)
    content.append(content[3])
    write(log_file, content)
    problems = verify_file(log_file)
    assert [(p.kind, p.line) for p in problems] == [(ProblemKind.INSERTED, 51)]
    assert "copy of seq 4" in problems[0].message


def test_removed_last_line_is_seen_only_against_the_hubs_head(log_file: Path) -> None:
    with AuditLog(log_file, SITE) as log:
        hub_head = log.head()
    write(log_file, lines(log_file)[:-1])
    # The shorter log is a valid chain: only the head the hub last received shows the cut.
    assert verify_file(log_file) == []
    problems = verify_file(log_file, expected_head=hub_head)
    assert [p.kind for p in problems] == [ProblemKind.TRUNCATED]
    assert "ends at seq 49" in problems[0].message


def test_head_of_another_hash_means_a_rewrite(log_file: Path) -> None:
    with AuditLog(log_file, SITE) as log:
        seq, _ = log.head()
    assert found(verify_file(log_file, expected_head=(seq, "cd" * 32))) == [
        (ProblemKind.EDITED, 50)
    ]
    assert verify_file(log_file, expected_head=(0, GENESIS)) == []


def rewrite_tail(path: Path, start: int) -> None:
    """Change record ``start`` and recompute every hash from there on, as someone without
    the key can: the chain is consistent again, the old macs stay."""
    records = [AuditRecord.from_dict(json.loads(line)) for line in lines(path)]
    prev = records[start - 2].hash
    for i in range(start - 1, len(records)):
        old = records[i]
        details = {**old.details, "dataset": "other"} if i == start - 1 else old.details
        new = seal_record(
            seq=old.seq,
            time=old.time,
            site=old.site,
            kind=old.kind,
            task_id=old.task_id,
            actor=old.actor,
            details=details,
            prev=prev,
        )
        records[i] = AuditRecord.from_dict({**new.to_dict(), "mac": old.mac})
        prev = new.hash
    write(path, [f"{r.to_json()}\n".encode() for r in records])


def test_consistent_tail_rewrite_is_seen_with_the_key_only(tmp_path: Path) -> None:
    path = tmp_path / "keyed.jsonl"
    written = fill(path, key=KEY)
    assert all(r.mac for r in written)
    assert verify_file(path, key=KEY) == []
    rewrite_tail(path, start=40)
    assert verify_file(path) == []  # without the key the rewritten chain is consistent
    problems = verify_file(path, key=KEY)
    assert found(problems) == [(ProblemKind.BAD_MAC, seq) for seq in range(40, 51)]
    assert found(verify_file(path, key=b"another key")) == [
        (ProblemKind.BAD_MAC, seq) for seq in range(1, 51)
    ]


def test_consistent_tail_rewrite_without_a_key_is_seen_against_the_hubs_copy(
    log_file: Path,
) -> None:
    with AuditLog(log_file, SITE) as log:
        hub_head = log.head()
        hub_copy = list(log.records())
    rewrite_tail(log_file, start=40)
    assert verify_file(log_file) == []
    assert found(verify_file(log_file, expected_head=hub_head)) == [(ProblemKind.EDITED, 50)]
    rewritten = [AuditRecord.from_dict(json.loads(line)) for line in lines(log_file)]
    assert continue_from(hub_copy[:39], rewritten[39:]) == []  # the hub got 1..39 before
    assert found(continue_from(hub_copy[:45], rewritten[45:])) == [(ProblemKind.EDITED, 46)]


def test_half_written_last_line_is_malformed_and_not_continued(log_file: Path) -> None:
    whole = log_file.read_bytes()
    with log_file.open("ab") as file:
        file.write(b'{"seq":51,"time":"2025-')  # a crash in the middle of a write
    problems = verify_file(log_file)
    assert [(p.kind, p.line) for p in problems] == [(ProblemKind.MALFORMED, 51)]
    assert "incomplete" in problems[0].message
    cut = log_file.read_bytes()
    with AuditLog(log_file, SITE) as log:
        with pytest.raises(BrokenAuditLog, match="incomplete"):
            log.append(AuditKind.ERROR, actor="agent", details={})
        with pytest.raises(BrokenAuditLog):
            log.head()
    assert log_file.read_bytes() == cut  # nothing was written
    with AuditLog(log_file, SITE) as log:
        shipped = []
        with pytest.raises(BrokenAuditLog, match="line 51"):
            shipped.extend(log.records(after_seq=48))
        assert [r.seq for r in shipped] == [49, 50]
    log_file.write_bytes(whole)
    with AuditLog(log_file, SITE) as log:
        assert log.append(AuditKind.ERROR, actor="agent", details={}).seq == 51


def test_a_last_line_that_is_not_a_record_is_not_continued(log_file: Path) -> None:
    content = lines(log_file)
    content[-1] = rewrite(content[-1], actor="someone else")
    write(log_file, content)
    with AuditLog(log_file, SITE) as log, pytest.raises(BrokenAuditLog, match="edited"):
        log.append(AuditKind.ERROR, actor="agent", details={})
    content[-1] = b'{"seq": 50}\n'
    write(log_file, content)
    with AuditLog(log_file, SITE) as log, pytest.raises(BrokenAuditLog, match="missing field"):
        log.append(AuditKind.ERROR, actor="agent", details={})


def test_garbage_line(log_file: Path) -> None:
    content = lines(log_file)
    content.insert(10, b"this is not json\n")
    content.insert(20, b"\xff\xfe\n")
    content.insert(30, b'{"seq": 3}\n')
    write(log_file, content)
    problems = verify_file(log_file)
    assert [(p.kind, p.line) for p in problems] == [
        (ProblemKind.MALFORMED, 11),
        (ProblemKind.MALFORMED, 21),
        (ProblemKind.MALFORMED, 31),
    ]
    assert "missing field(s)" in problems[2].message


def test_malformed_records_given_as_objects() -> None:
    good = seal_record(
        seq=1,
        time="2025-01-31T12:00:00.000000Z",
        site=SITE,
        kind="task_start",
        task_id="t1",
        actor="agent",
        details={},
        prev=GENESIS,
    ).to_dict()
    bad = [
        {**good, "seq": True},
        {**good, "kind": "coffee"},
        {**good, "time": "yesterday"},
        {**good, "details": {"x": 1.5}},
        {**good, "details": {"x": {"nested": 1}}},
        {**good, "prev": "XYZ"},
        {**good, "extra": 1},
        [1, 2],
    ]
    problems = verify([good, *bad])
    assert [(p.kind, p.line) for p in problems] == [
        (ProblemKind.MALFORMED, line) for line in range(2, 10)
    ]


def test_clock_going_back_is_a_warning() -> None:
    records, prev = [], GENESIS
    for seq, time in enumerate(
        ["2025-01-31T12:00:02.000000Z", "2025-01-31T12:00:01.000000Z", "2025-01-31T12:00:03Z"],
        1,
    ):
        record = seal_record(
            seq=seq,
            time=time,
            site=SITE,
            kind=AuditKind.DATA_ACCESS,
            task_id=None,
            actor="agent",
            details={},
            prev=prev,
        )
        records.append(record)
        prev = record.hash
    problems = verify(records)
    assert found(problems) == [(ProblemKind.CLOCK, 2)]
    assert all(p.is_warning for p in problems)


def test_keys_must_match_the_log(tmp_path: Path) -> None:
    keyed, plain = tmp_path / "keyed.jsonl", tmp_path / "plain.jsonl"
    fill(keyed, 4, key=KEY)
    fill(plain, 4)
    with AuditLog(keyed, SITE) as log, pytest.raises(BrokenAuditLog, match="its key"):
        log.append(AuditKind.ERROR, actor="agent", details={})
    with AuditLog(keyed, SITE, key=b"wrong") as log, pytest.raises(BrokenAuditLog, match="mac"):
        log.append(AuditKind.ERROR, actor="agent", details={})
    with AuditLog(plain, SITE, key=KEY) as log, pytest.raises(BrokenAuditLog, match="no macs"):
        log.append(AuditKind.ERROR, actor="agent", details={})
    with AuditLog(plain, "site-b") as log, pytest.raises(BrokenAuditLog, match="site-a"):
        log.append(AuditKind.ERROR, actor="agent", details={})
    assert found(verify_file(plain, key=KEY)) == [(ProblemKind.BAD_MAC, s) for s in range(1, 5)]


def test_bad_fields_are_refused_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, SITE) as log:
        with pytest.raises(ValueError, match="details"):
            log.append(AuditKind.DATA_ACCESS, actor="agent", details={"size": 1.5})
        with pytest.raises(ValueError):
            log.append("not-a-kind", actor="agent", details={})
        with pytest.raises(ValueError, match="actor"):
            log.append(AuditKind.DATA_ACCESS, actor="", details={})
        assert log.head() == (0, GENESIS)
        assert log.append(AuditKind.TASK_START, task_id="t", actor="agent").details == {}
    assert path.stat().st_mode & 0o777 == 0o600


def test_continue_from_checks_a_batch_against_what_the_hub_holds(log_file: Path) -> None:
    with AuditLog(log_file, SITE) as log:
        records = list(log.records())
    held, batch = records[:20], records[20:30]
    assert continue_from([], records[:5]) == []
    assert continue_from(held, batch) == []
    assert continue_from((20, records[19].hash), [r.to_dict() for r in batch]) == []
    assert continue_from(held, []) == []
    assert found(continue_from(held, records[22:30])) == [(ProblemKind.REMOVED, 23)]
    overlap = continue_from(held, records[18:30])  # sent again: the agent must skip those
    assert found(overlap) == [(ProblemKind.REORDERED, 19)]
    assert "up to seq 20" in overlap[0].message
    assert found(continue_from((20, "ef" * 32), batch)) == [(ProblemKind.EDITED, 21)]
    swapped = [batch[1], batch[0], *batch[2:]]
    assert found(continue_from(held, swapped)) == [(ProblemKind.REORDERED, 22)]


def test_threads_append_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    shared = AuditLog(path, SITE)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        # Two threads share one AuditLog, two have their own on the same file.
        log = shared if n < 2 else AuditLog(path, SITE)
        try:
            start.wait()
            for i in range(50):
                log.append(AuditKind.DATA_ACCESS, actor=f"thread-{n}", details={"i": i})
        except BaseException as exc:
            errors.append(exc)
        finally:
            if log is not shared:
                log.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared.close()
    assert errors == []
    assert verify_file(path) == []
    with AuditLog(path, SITE) as log:
        records = list(log.records())
    assert [r.seq for r in records] == list(range(1, 201))
    assert sorted((r.actor, r.details["i"]) for r in records) == sorted(
        (f"thread-{n}", i) for n in range(4) for i in range(50)
    )


APPENDER = """
import sys
from pathlib import Path
from toolferry.security.audit import AuditKind, AuditLog

with AuditLog(Path(sys.argv[1]), "site-a") as log:
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(50):
        log.append(AuditKind.DATA_ACCESS, actor="proc-" + sys.argv[2], details={"i": i})
"""


def test_processes_append_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(path), str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    for proc in procs:  # both have opened the log before either appends
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    for proc in procs:
        assert proc.wait(timeout=60) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    assert verify_file(path) == []
    with AuditLog(path, SITE) as log:
        records = list(log.records())
    assert [r.seq for r in records] == list(range(1, 101))
    assert sorted(r.actor for r in records) == ["proc-0"] * 50 + ["proc-1"] * 50
