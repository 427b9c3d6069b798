"""Request records in SQLite, written off the request path.

`RecordStore.submit` only enqueues; one daemon thread owns the write
connection and inserts in batches, so a slow disk never stalls the proxy
loop. A database that cannot be written (locked by another process, made
read-only, on a full disk) keeps its records queued (up to `_MAX_BACKLOG`)
and is tried again with a backoff; serving never waits for it. Queries open their own short-lived connection per call (sqlite
connections belong to one thread) and are meant to be run from async code
through ``asyncio.to_thread``. WAL mode lets those reads proceed while the
writer writes.

Secrets never reach the database: `Record` has no header or body fields, and
its ``error`` text goes through `redact` with the secrets the caller knows,
plus a pattern-based safety net for common credential shapes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
import re
import sqlite3
import threading
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.db import Table

from .pool.credentials import key_id  # the one id scheme for keys, re-exported for callers

__all__ = ["MAX_QUERY_LIMIT", "Record", "RecordStore", "key_id", "redact"]

log = logging.getLogger(__name__)

TABLE = "requests"
_META = "meta"  # small key/value settings kept with the records (the usage baseline)
MAX_QUERY_LIMIT = 1000
REDACTED = "[REDACTED]"
_MAX_ERROR_CHARS = 4000
_BATCH_SIZE = 500
# How often the writer drains what was submitted: under load this is one
# transaction per interval instead of one per request.
_LINGER_SECONDS = 0.05
# Past this backlog the writer is clearly stuck; dropping records beats unbounded memory.
_MAX_BACKLOG = 100_000
_BUSY_TIMEOUT_MS = 5000
# While the database cannot be written: first retry after this, doubling.
_RETRY_SECONDS = (0.5, 10.0)
_STATUS_CLASS = re.compile(r"[1-5]xx")

# Safety net for credentials the caller did not know about (e.g. echoed in an
# upstream error body). Explicit secrets passed to `redact` are the main defence.
_SECRET_PATTERNS = (
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"),
    re.compile(r"\bya29\.[0-9A-Za-z_-]{16,}"),
    re.compile(r"\b(?:ghu|gho|ghp)_[A-Za-z0-9]{20,}"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One proxied request. Deliberately has no headers/body fields: those carry secrets."""

    ts: float
    request_id: str
    client_key_id: str | None = None
    method: str
    route: str
    client_format: str
    provider: str | None = None
    credential_id: str | None = None
    model_requested: str | None = None
    model_sent: str | None = None
    stream: bool = False
    status: int
    latency_ms: float
    ttfb_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    error: str | None = None
    # 1 for the request as the client sent it; 2, 3, … for the gateway's failover attempts.
    attempt: int = 1


def _column_type(hint: Any) -> type:
    # `str | None` -> str; bool is stored as an INTEGER.
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return int if hint is bool else hint


_COLUMNS: dict[str, type] = {"id": int} | {
    name: _column_type(hint) for name, hint in typing.get_type_hints(Record).items()
}


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every known secret and anything shaped like a credential replaced."""
    # Longest first, so a secret that contains another is removed whole.
    for secret in sorted({s for s in secrets if s and s.strip()}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def _private_file(path: Path) -> None:
    """Create the database (and its directory) readable by its owner only: records name keys and accounts."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _open(path: Path) -> Database:
    db = Database(path)
    db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    return db


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[Table | None]:
    """A connection for one query call: yields the table, or None if there is none yet."""
    if not path.exists():
        yield None  # don't create an empty database file just to read it
        return
    db = _open(path)
    try:
        table = db.table(TABLE)
        yield table if table.exists() else None
    finally:
        db.close()


def _ensure_schema(db: Database) -> None:
    table = db.table(TABLE)
    table.create(_COLUMNS, pk="id", if_not_exists=True)
    # A database from an older version lacks newer columns: add them, keep the rows.
    for name, kind in _COLUMNS.items():
        if name not in table.columns_dict:
            table.add_column(name, kind)
    for column in ("ts", "provider", "status", "request_id"):
        table.create_index([column], if_not_exists=True)
    db.enable_wal()


_FIELDS = tuple(f.name for f in dataclasses.fields(Record))
_ERROR = _FIELDS.index("error")
# One prepared statement for every batch: no per-batch SQL building or table introspection.
_INSERT = f"INSERT INTO {TABLE} ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))})"


def _row(record: Record, secrets: tuple[str, ...]) -> tuple[Any, ...]:
    row = [getattr(record, name) for name in _FIELDS]
    if record.error is not None:
        row[_ERROR] = redact(record.error, secrets)[:_MAX_ERROR_CHARS]
    return tuple(row)


def _status_where(status_class: str) -> tuple[str, list[Any]]:
    if status_class == "errors":
        return "(status >= 400 OR error IS NOT NULL)", []
    if not _STATUS_CLASS.fullmatch(status_class):
        raise ValueError(f"status_class must be '1xx'..'5xx' or 'errors', not {status_class!r}")
    low = int(status_class[0]) * 100
    return "status >= ? AND status < ?", [low, low + 100]


def _insert(db: Database, rows: list[tuple[Any, ...]]) -> None:
    with db.conn:  # one transaction per batch
        db.conn.executemany(_INSERT, rows)


def _insert_or_log(db: Database, row: tuple[Any, ...]) -> None:
    try:
        _insert(db, [row])
    except Exception:
        log.exception("dropping request record %s", row[_FIELDS.index("request_id")])


_Item = tuple[Record, tuple[str, ...]]


class RecordStore:
    """Append-only request log at ``path``; see the module docstring for the threading model.

    `submit` runs on the proxy's event loop for every request, so it wakes
    no thread: it appends to a deque and the writer drains it every
    ``_LINGER_SECONDS``, one transaction per drain.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._pending: collections.deque[_Item] = collections.deque()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._wake = threading.Event()  # cuts the writer's wait short (flush, close)
        self._submitted = 0
        # Uncontended in the proxy (one loop thread submits); it only keeps
        # the count exact when tests submit from several threads.
        self._count_lock = threading.Lock()
        # Written or given up on, so `flush` cannot hang on a failed batch.
        self._settled = 0
        self._settled_cond = threading.Condition()
        self.dropped = 0
        # Why the database cannot be written now (None: it can), for health checks.
        self.unavailable: str | None = None

    def start(self) -> None:
        """Create the schema and start the writer.

        A database that cannot be opened or written now does not stop the
        gateway: it is logged, and the writer keeps trying.
        """
        if self._thread is not None:
            return
        try:
            self._prepare()
        except (OSError, sqlite3.Error) as e:
            self.unavailable = str(e)
            log.warning("records database %s cannot be written (%s); records are kept until it can", self.path, e)
        self._thread = threading.Thread(target=self._run, name="quotio-records", daemon=True)
        self._thread.start()

    def _prepare(self) -> Database:
        """An open write connection with the schema in place."""
        _private_file(self.path)
        db = _open(self.path)
        try:
            _ensure_schema(db)
            db.execute("PRAGMA synchronous = NORMAL")  # durable enough under WAL, far fewer fsyncs
        except BaseException:
            db.close()
            raise
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.chmod(f"{self.path}{suffix}", 0o600)
        return db

    def submit(self, record: Record, secrets: Iterable[str] = ()) -> None:
        """Queue ``record`` for writing; never blocks and never raises.

        ``secrets`` are redacted from ``record.error`` before it is stored.
        """
        try:
            if self._closed or len(self._pending) >= _MAX_BACKLOG:
                self.dropped += 1
                return
            with self._count_lock:
                self._pending.append((record, tuple(secrets)))
                self._submitted += 1
        except Exception:
            log.exception("dropping request record")

    def status(self) -> dict[str, Any]:
        """Whether records are being written, for health checks."""
        return {"ok": self.unavailable is None, "error": self.unavailable,
                "pending": len(self._pending), "dropped": self.dropped}

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every record submitted so far is written; False on timeout."""
        with self._count_lock:
            target = self._submitted
        if self._thread is None or not self._thread.is_alive():
            return self._settled >= target
        self._wake.set()
        with self._settled_cond:
            return self._settled_cond.wait_for(lambda: self._settled >= target, timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is queued, then stop the writer; True if it stopped in time."""
        if self._closed:
            return True
        self._closed = True
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- writer thread -------------------------------------------------------

    def _run(self) -> None:
        db: Database | None = None
        delay = _RETRY_SECONDS[0]
        try:
            while True:
                closing = self._closed
                while self._pending:
                    if db is None:
                        db = self._connect()
                        if db is None:
                            break
                    if not self._write(db, self._take_batch()):
                        db.close()
                        db = None
                        break
                if db is not None and not self._pending:
                    delay = _RETRY_SECONDS[0]
                if closing:
                    if self._pending:
                        log.warning("records database unavailable at shutdown: %d records not written", len(self._pending))
                    return
                # Back off while the database is unavailable; otherwise linger.
                self._wake.wait(_LINGER_SECONDS if db is not None or not self._pending else delay)
                if db is None and self._pending:
                    delay = min(delay * 2, _RETRY_SECONDS[1])
                self._wake.clear()
        finally:
            if db is not None:
                db.close()

    def _connect(self) -> Database | None:
        try:
            db = self._prepare()
        except (OSError, sqlite3.Error) as e:
            self._unavailable(e)
            return None
        if self.unavailable is not None:
            log.info("records database %s is writable again", self.path)
            self.unavailable = None
        return db

    def _unavailable(self, error: BaseException) -> None:
        if self.unavailable is None:
            log.warning("records database %s cannot be written (%s); keeping %d records until it can",
                        self.path, error, len(self._pending))
        self.unavailable = str(error)

    def _take_batch(self) -> list[_Item]:
        batch: list[_Item] = []
        while self._pending and len(batch) < _BATCH_SIZE:
            batch.append(self._pending.popleft())
        return batch

    def _write(self, db: Database, batch: list[_Item]) -> bool:
        """Write `batch`; False (batch queued again) when the database itself is unavailable."""
        if not batch:
            return True
        try:
            rows = [_row(record, secrets) for record, secrets in batch]
            try:
                _insert(db, rows)
            except sqlite3.OperationalError as e:
                # Locked, read-only, disk full: the database, not the rows.
                self._pending.extendleft(reversed(batch))
                self._unavailable(e)
                return False
            except Exception:
                # One bad row must not cost the whole batch: retry them one by one.
                log.warning("batch insert failed; retrying %d records singly", len(rows))
                for row in rows:
                    _insert_or_log(db, row)
        except Exception:
            log.exception("failed to write %d request records", len(batch))
        with self._settled_cond:
            self._settled += len(batch)
            self._settled_cond.notify_all()
        return True

    # -- queries (sync; run them through asyncio.to_thread) -----------------

    def query(
        self,
        limit: int = 100,
        provider: str | None = None,
        status_class: str | None = None,
        request_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Records newest first, as dicts (``stream`` as bool); ``limit`` is capped at 1000."""
        clauses: list[str] = []
        params: list[Any] = []
        if provider is not None:
            clauses.append("provider = ?")
            params.append(provider)
        if request_id is not None:
            clauses.append("request_id = ?")
            params.append(request_id)
        if status_class is not None:
            clause, args = _status_where(status_class)
            clauses.append(clause)
            params.extend(args)
        limit = max(0, min(limit, MAX_QUERY_LIMIT))  # a negative LIMIT means "all" to sqlite
        with _reading(self.path) as table:
            if table is None:
                return []
            rows = table.rows_where(
                " AND ".join(clauses) or None, params, order_by="ts DESC, id DESC", limit=limit
            )
            return [{**row, "stream": bool(row["stream"])} for row in rows]

    def rows_since(self, since: float, columns: Iterable[str]) -> list[dict[str, Any]]:
        """Every record from `since` on, oldest first, with only `columns` (for usage figures)."""
        cols = ", ".join(columns)
        with _reading(self.path) as table:
            if table is None:
                return []
            cursor = table.db.execute(f"SELECT {cols} FROM {TABLE} WHERE ts >= ? ORDER BY ts", [since])
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def prune(self, before: float) -> int:
        """Delete records older than `before` (retention); returns how many went."""
        with _reading(self.path) as table:
            if table is None:
                return 0
            with table.db.conn:
                return table.db.execute(f"DELETE FROM {TABLE} WHERE ts < ?", [before]).rowcount

    def get_meta(self, key: str) -> str | None:
        with _reading(self.path) as table:
            if table is None or not table.db.table(_META).exists():
                return None
            row = table.db.execute(f"SELECT value FROM {_META} WHERE key = ?", [key]).fetchone()
            return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        db = _open(self.path)
        try:
            db.table(_META).upsert({"key": key, "value": value}, pk="key")
        finally:
            db.close()

    def count(self) -> int:
        with _reading(self.path) as table:
            return 0 if table is None else table.count

    def clear(self) -> int:
        """Delete every record; returns how many were deleted."""
        with _reading(self.path) as table:
            if table is None:
                return 0
            with table.db.conn:
                return table.db.execute(f"DELETE FROM {TABLE}").rowcount

