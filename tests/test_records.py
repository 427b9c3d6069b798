import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from quotio_core.records import MAX_QUERY_LIMIT, Record, RecordStore, key_id, redact


def make(n: int = 0, **overrides: object) -> Record:
    fields: dict = {
        "ts": 1_700_000_000.0 + n,
        "request_id": f"req-{n}",
        "client_key_id": key_id("client-key"),
        "method": "POST",
        "route": "/v1/messages",
        "client_format": "anthropic",
        "provider": "claude",
        "credential_id": "cred-1",
        "model_requested": "claude-sonnet-4-5",
        "model_sent": "claude-sonnet-4-5-20250929",
        "stream": True,
        "status": 200,
        "latency_ms": 812.5,
        "ttfb_ms": 120.0,
        "input_tokens": 100,
        "output_tokens": 50,
    }
    return Record(**(fields | overrides))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "records.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[RecordStore]:
    store = RecordStore(db_path)
    store.start()
    yield store
    store.close()


def test_round_trip(store: RecordStore) -> None:
    record = make(1, error="upstream 529", cached_tokens=7, reasoning_tokens=3)
    store.submit(record)
    assert store.flush()
    [row] = store.query()
    assert isinstance(row.pop("id"), int)
    assert row == dataclasses.asdict(record)
    assert row["stream"] is True


def test_submit_from_many_threads(store: RecordStore) -> None:
    threads, per_thread = 8, 250

    def worker(t: int) -> None:
        for i in range(per_thread):
            store.submit(make(t * per_thread + i))

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert store.flush()
    assert store.count() == threads * per_thread
    ids = {row["request_id"] for row in store.query(limit=MAX_QUERY_LIMIT)}
    assert len(ids) == MAX_QUERY_LIMIT


def test_query_is_newest_first_and_limit_is_capped(store: RecordStore) -> None:
    for n in (3, 1, 1200, 2):
        store.submit(make(n))
    for n in range(1100):
        store.submit(make(5000 + n, ts=0.0))
    store.flush()
    assert [r["request_id"] for r in store.query(limit=4)] == ["req-1200", "req-3", "req-2", "req-1"]
    assert len(store.query(limit=5000)) == MAX_QUERY_LIMIT
    assert store.query(limit=0) == []
    assert store.query(limit=-1) == []


@pytest.fixture
def mixed(store: RecordStore) -> RecordStore:
    rows = [
        make(1, status=200),
        make(2, status=201, provider="gemini"),
        make(3, status=302),
        make(4, status=404, provider="gemini"),
        make(5, status=429),
        make(6, status=503, provider="codex"),
        make(7, status=200, error="stream cut: overloaded_error"),
    ]
    for row in rows:
        store.submit(row)
    store.flush()
    return store


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [7, 6, 5, 4, 3, 2, 1]),
        ({"provider": "gemini"}, [4, 2]),
        ({"provider": "nobody"}, []),
        ({"status_class": "2xx"}, [7, 2, 1]),
        ({"status_class": "3xx"}, [3]),
        ({"status_class": "4xx"}, [5, 4]),
        ({"status_class": "5xx"}, [6]),
        ({"status_class": "errors"}, [7, 6, 5, 4]),
        ({"status_class": "errors", "provider": "gemini"}, [4]),
        ({"request_id": "req-3"}, [3]),
        ({"request_id": "req-3", "provider": "gemini"}, []),
        ({"limit": 2, "status_class": "errors"}, [7, 6]),
    ],
)
def test_query_filters(mixed: RecordStore, filters: dict, expected: list[int]) -> None:
    assert [r["request_id"] for r in mixed.query(**filters)] == [f"req-{n}" for n in expected]


@pytest.mark.parametrize("status_class", ["6xx", "2XX", "ok", "", "4xx; DROP TABLE requests"])
def test_bad_status_class(mixed: RecordStore, status_class: str) -> None:
    with pytest.raises(ValueError):
        mixed.query(status_class=status_class)


def test_clear(mixed: RecordStore) -> None:
    assert mixed.count() == 7
    assert mixed.clear() == 7
    assert mixed.count() == 0
    assert mixed.query() == []
    mixed.submit(make(8))
    mixed.flush()
    assert mixed.count() == 1


def test_records_survive_restart(db_path: Path) -> None:
    first = RecordStore(db_path)
    first.start()
    for n in range(5):
        first.submit(make(n))
    assert first.close()
    second = RecordStore(db_path)
    second.start()
    try:
        assert second.count() == 5
        assert [r["request_id"] for r in second.query()] == [f"req-{n}" for n in (4, 3, 2, 1, 0)]
    finally:
        second.close()


def test_close_writes_what_is_queued_then_drops(db_path: Path) -> None:
    store = RecordStore(db_path)
    store.start()
    for n in range(300):
        store.submit(make(n))
    assert store.close()
    store.submit(make(999))  # after close: dropped, not raised
    assert store.dropped == 1
    assert store.count() == 300
    assert store.close()  # idempotent


def test_wal_mode_and_indexes(store: RecordStore, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = [row[1] for row in conn.execute("PRAGMA index_list(requests)")]
        indexed = {row[2] for name in names for row in conn.execute(f"PRAGMA index_info({name})")}
    finally:
        conn.close()
    assert {"ts", "provider", "status"} <= indexed


def test_queries_before_any_database_exists(db_path: Path) -> None:
    store = RecordStore(db_path)
    assert store.query() == []
    assert store.count() == 0
    assert store.clear() == 0
    assert not db_path.exists()


def test_submit_never_raises_on_a_broken_record(store: RecordStore) -> None:
    class Unstorable:
        pass

    store.submit(make(1, model_sent=Unstorable()))  # type: ignore[arg-type]
    store.submit(make(2))
    assert store.flush()
    store.submit(make(3))
    assert store.flush()
    # Only the broken record is lost, not the rest of its batch, nor the writer.
    assert [r["request_id"] for r in store.query()] == ["req-3", "req-2"]


def test_record_accepts_no_headers() -> None:
    with pytest.raises(TypeError):
        make(1, headers={"authorization": "Bearer sk-secret"})
    assert not {"headers", "body", "api_key"} & {f.name for f in dataclasses.fields(Record)}


def test_error_text_is_redacted_before_storing(store: RecordStore) -> None:
    secret = "oauth-access-token-0123456789"
    store.submit(make(1, error=f"401 for token {secret}; retry"), secrets=[secret])
    store.flush()
    [row] = store.query()
    assert secret not in row["error"]
    assert row["error"] == "401 for token [REDACTED]; retry"


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("key abc123xyz here", ["abc123xyz"], "key [REDACTED] here"),
        ("abc123xyz-long and abc123xyz", ["abc123xyz", "abc123xyz-long"], "[REDACTED] and [REDACTED]"),
        ("nothing secret", ["", "  ", "absent-secret"], "nothing secret"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", [], "Authorization: [REDACTED]"),
        ("bad key sk-ant-api03-AAAAAAAAAAAAAAAAAAAA", [], "bad key [REDACTED]"),
        ("key=AIzaSyA1234567890abcdefghijklmnopqrstu", [], "key=[REDACTED]"),
        ("tok ya29.a0AfH6SMBxxxxxxxxxxxxxxx end", [], "tok [REDACTED] end"),
        ("gh ghu_abcdefghijklmnopqrstuvwxyz", [], "gh [REDACTED]"),
        ("overloaded_error: Overloaded", [], "overloaded_error: Overloaded"),
    ],
)
def test_redact(text: str, secrets: list[str], expected: str) -> None:
    assert redact(text, secrets) == expected


def test_key_id_is_short_stable_and_not_the_key() -> None:
    key = "sk-quotio-client-0123456789"
    assert key_id(key) == key_id(key) != key_id(key + "x")
    assert len(key_id(key)) == 12 and key not in key_id(key)


def test_database_from_before_the_attempt_column_is_migrated(tmp_path):
    import sqlite_utils

    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    old["requests"].insert({"id": 1, "ts": 1.0, "request_id": "r-old", "method": "POST", "route": "/v1/messages",
                            "client_format": "anthropic", "status": 200, "latency_ms": 1.0}, pk="id")
    old.close()
    store = RecordStore(path)
    store.start()
    try:
        store.submit(Record(ts=2.0, request_id="r-new", method="POST", route="/v1/messages",
                            client_format="anthropic", status=429, latency_ms=2.0, attempt=2))
        assert store.flush()
        rows = {r["request_id"]: r for r in store.query(limit=10)}
        assert rows["r-new"]["attempt"] == 2
        assert rows["r-old"]["status"] == 200  # the old rows are kept
    finally:
        store.close()


def test_prune_keeps_only_records_from_the_cutoff_on(store: RecordStore) -> None:
    for n in range(5):
        store.submit(make(n))
    assert store.flush()
    cutoff = 1_700_000_000.0 + 3
    assert store.prune(cutoff) == 3
    assert [r["request_id"] for r in store.rows_since(0, ("request_id", "ts"))] == ["req-3", "req-4"]
    assert store.prune(cutoff) == 0


def test_rows_since_is_oldest_first_with_the_columns_asked(store: RecordStore) -> None:
    for n in (2, 0, 1):
        store.submit(make(n))
    assert store.flush()
    rows = store.rows_since(1_700_000_000.0 + 1, ("request_id", "input_tokens"))
    assert rows == [{"request_id": "req-1", "input_tokens": 100}, {"request_id": "req-2", "input_tokens": 100}]


def test_meta_values_survive_a_new_store(store: RecordStore, db_path: Path) -> None:
    store.submit(make(0))
    assert store.flush()
    assert store.get_meta("usage_baseline") is None
    store.set_meta("usage_baseline", "123.5")
    store.set_meta("usage_baseline", "124.5")
    assert RecordStore(db_path).get_meta("usage_baseline") == "124.5"


def test_a_locked_database_keeps_records_until_it_is_free(store: RecordStore, db_path: Path, monkeypatch) -> None:
    import quotio_core.records as records

    monkeypatch.setattr(records, "_BUSY_TIMEOUT_MS", 100)
    store.submit(make(0))
    assert store.flush()
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    try:
        for n in range(1, 6):
            store.submit(make(n))
        assert not store.flush(timeout=1.5)  # nothing lost, nothing written yet
        assert store.unavailable is not None and "locked" in store.unavailable
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.flush(timeout=15)
    assert store.count() == 6
    assert store.unavailable is None
    assert store.dropped == 0


def test_a_read_only_database_at_start_does_not_stop_the_store(db_path: Path, monkeypatch) -> None:
    import quotio_core.records as records
    from sqlite_utils import Database

    first = RecordStore(db_path)
    first.start()
    first.submit(make(0))
    assert first.flush()
    first.close()
    writable = records._open
    # The file as a read-only mount (or `chattr +i`) would leave it; root ignores chmod.
    read_only = {"on": True}
    monkeypatch.setattr(records, "_open", lambda path: Database(
        sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    ) if read_only["on"] else writable(path))
    store = RecordStore(db_path)
    try:
        store.start()  # no exception: serving must go on
        store.submit(make(1))
        assert not store.flush(timeout=1.5)
        assert store.unavailable is not None and "readonly" in store.unavailable
        read_only["on"] = False
        assert store.flush(timeout=15)
        assert store.count() == 2
    finally:
        store.close()
