"""Per-credential cooldowns: what an upstream failure means, and who is cooling.

Three layers, each usable alone:

- `decide` is a pure function from one upstream answer (status, lower-cased
  headers, body) to a `Decision`: how long to cool, and whether the whole
  account or only one model is affected. It never raises; garbage bodies and
  headers fall back to the generic rules.
- `CooldownBook` is the in-memory state the selector consults. Times are wall
  clock (``time.time``) because entries are persisted and must mean the same
  thing after a restart.
- `CooldownStore` persists entries in SQLite so a restart neither forgets a
  cooldown nor makes one permanent (expired rows are skipped and pruned).

Persistence design: the book is synchronous and owns no I/O. It calls an
optional ``on_change(cooldown, cred_id, model)`` hook after every change of
an entry: ``cooldown`` is the new entry, or None when the entry for
``(cred_id, model)`` was removed (``model`` is ``"*"`` for an account-wide
entry). `CooldownStore.apply` has exactly that signature, so the gateway can
wire ``on_change=lambda *a: loop.run_in_executor(None, store.apply, *a)``
(or ``asyncio.to_thread``) without the book knowing about threads.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import math
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlite_utils import Database

from ..retry import transient as transient_status

__all__ = [
    "ACCOUNT",
    "AUTH_SECONDS",
    "MAX_BACKOFF_SECONDS",
    "NOT_FOUND_SECONDS",
    "Cooldown",
    "CooldownBook",
    "CooldownRule",
    "CooldownStore",
    "Decision",
    "OnChange",
    "Scope",
    "decide",
]

log = logging.getLogger(__name__)

Scope = Literal["model", "account"]

# The model key of an account-wide entry: no real model is named "*".
ACCOUNT = "*"

MAX_BACKOFF_SECONDS = 30 * 60.0
AUTH_SECONDS = 30 * 60.0
NOT_FOUND_SECONDS = 12 * 3600.0
# A provider-given reset beyond this is treated as garbage and clamped: a
# typo'd timestamp must not park an account for years (CPA issue #4724 family).
_MAX_PROVIDER_SECONDS = 31 * 24 * 3600.0
# Retry-After: 0 still means "this credential just failed"; cool it briefly so
# the retry goes to another credential instead of hammering the same one.
_MIN_SECONDS = 1.0

_ANTHROPIC_BUCKETS = ("requests", "tokens", "input-tokens", "output-tokens")


@dataclass(frozen=True, slots=True)
class Decision:
    """What one failed upstream answer means for its credential."""

    seconds: float
    scope: Scope
    reason: str
    status: int = 0


# The spec names both; they are the same thing.
CooldownRule = Decision


@dataclass(frozen=True, slots=True)
class Cooldown:
    cred_id: str
    model: str  # ACCOUNT ("*") for an account-wide entry
    until: float  # wall-clock epoch seconds
    reason: str
    status: int
    scope: Scope
    strikes: int = 0

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)

    def active(self, now: float) -> bool:
        # Ends exactly at `until`: at that instant the credential is usable.
        return now < self.until


# --------------------------------------------------------------------------
# decide
# --------------------------------------------------------------------------


def decide(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    strikes: int,
    now: float,
    transient_seconds: float = 60.0,
) -> Decision | None:
    """The cooldown an upstream answer calls for, or None for no cooldown.

    ``strikes`` is the number of consecutive 429s already counted for this
    credential and model (before this one), so the first 429 without a reset
    hint cools for 1 s, the next for 2 s, and so on up to 30 minutes.
    """
    try:
        return _decide(status, headers, body, strikes, now, transient_seconds)
    except Exception:  # noqa: BLE001 — a cooldown rule must never break the request path
        return _fallback(status, strikes, transient_seconds)


def _decide(
    status: int, headers: Mapping[str, str], body: bytes, strikes: int, now: float, transient: float
) -> Decision | None:
    if status != 429:
        return _fallback(status, strikes, transient)
    payload = _json(body)
    scope: Scope = "account" if _account_exhausted(payload) else "model"
    found = _reset_from_headers(headers, now) or _reset_from_body(payload, now)
    if found is not None:
        seconds, source = found
        seconds = min(max(seconds, _MIN_SECONDS), _MAX_PROVIDER_SECONDS)
        return Decision(seconds, scope, f"429 rate limited ({source})", 429)
    return Decision(_backoff(strikes), scope, f"429 rate limited (backoff, strike {strikes + 1})", 429)


def _fallback(status: int, strikes: int, transient: float) -> Decision | None:
    """The rules that need neither headers nor body."""
    if status == 429:
        return Decision(_backoff(strikes), "model", f"429 rate limited (backoff, strike {strikes + 1})", 429)
    if status in (401, 402):
        # A rejected token or an unpaid account fails for every model alike.
        return Decision(AUTH_SECONDS, "account", f"{status} unauthorized or payment required", status)
    if status == 403:
        # Forbidden can be one model the account may not use.
        return Decision(AUTH_SECONDS, "model", "403 forbidden", status)
    if status == 404:
        return Decision(NOT_FOUND_SECONDS, "model", "404 model not found", status)
    if transient_status(status):
        what = "connection error" if status == 0 else f"{status} upstream error"
        return Decision(float(transient), "model", what, status)
    return None


def _backoff(strikes: int) -> float:
    n = max(0, int(strikes))
    if n >= 11:  # 2**11 s > 30 min already; avoids huge powers
        return MAX_BACKOFF_SECONDS
    return min(float(2**n), MAX_BACKOFF_SECONDS)


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, TypeError):
        return None


def _error_objects(payload: Any) -> list[dict[str, Any]]:
    """The ``error`` objects of a body; Code Assist wraps its error in a list."""
    items = payload if isinstance(payload, list) else [payload]
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("error"), dict):
            out.append(item["error"])
    return out


# --- reset time from headers ---------------------------------------------


def _reset_from_headers(headers: Mapping[str, str], now: float) -> tuple[float, str] | None:
    # An explicit Retry-After is the upstream telling us exactly when to come back.
    ms = _number(headers.get("retry-after-ms"))
    if ms is not None and ms >= 0:
        return ms / 1000.0, "retry-after-ms"
    after = _retry_after(headers.get("retry-after"), now)
    if after is not None:
        return after, "retry-after"
    anthropic = _anthropic_reset(headers, now)
    if anthropic is not None:
        return anthropic, "anthropic reset headers"
    unified = _epoch_or_rfc3339(headers.get("anthropic-ratelimit-unified-reset"))
    if unified is not None:
        return unified - now, "anthropic unified reset"
    return None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        n = float(value.strip())
    except (ValueError, AttributeError):
        return None
    return n if math.isfinite(n) else None


def _retry_after(value: str | None, now: float) -> float | None:
    """Retry-After is delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds if seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return when.timestamp() - now


def _rfc3339(value: str | None) -> float | None:
    if not value:
        return None
    try:
        # fromisoformat handles "Z" and fractional seconds since Python 3.11.
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        return None  # a reset time without a zone is ambiguous; ignore it
    return when.timestamp()


def _epoch_or_rfc3339(value: str | None) -> float | None:
    n = _number(value)
    return n if n is not None else _rfc3339(value)


def _anthropic_reset(headers: Mapping[str, str], now: float) -> float | None:
    """Latest reset among exhausted buckets, else the earliest reset of any.

    An exhausted bucket (remaining 0) is what blocks us, and we stay blocked
    until the last of them refills; without one we only know the soonest
    moment something refills.
    """
    resets: list[tuple[float, bool]] = []
    for bucket in _ANTHROPIC_BUCKETS:
        at = _rfc3339(headers.get(f"anthropic-ratelimit-{bucket}-reset"))
        if at is None:
            continue
        remaining = _number(headers.get(f"anthropic-ratelimit-{bucket}-remaining"))
        resets.append((at, remaining is not None and remaining <= 0))
    if not resets:
        return None
    exhausted = [at for at, empty in resets if empty]
    at = max(exhausted) if exhausted else min(at for at, _ in resets)
    return at - now


# --- reset time from bodies ----------------------------------------------


def _reset_from_body(payload: Any, now: float) -> tuple[float, str] | None:
    for error in _error_objects(payload):
        codex = _codex_reset(error, now)
        if codex is not None:
            return codex, "codex resets"
        gemini = _gemini_reset(error)
        if gemini is not None:
            return gemini, "gemini retry delay"
    return None


def _codex_reset(error: dict[str, Any], now: float) -> float | None:
    seconds = error.get("resets_in_seconds")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds):
        return float(seconds)
    at = error.get("resets_at")
    if isinstance(at, (int, float)) and not isinstance(at, bool) and math.isfinite(at):
        return float(at) - now
    return None


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def _duration(value: Any) -> float | None:
    """Google duration text: "23s", "1.5s", "500ms", or Go-style "1h2m3.5s"."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def _gemini_reset(error: dict[str, Any]) -> float | None:
    details = error.get("details")
    if not isinstance(details, list):
        return None
    for detail in details:
        if not isinstance(detail, dict):
            continue
        # RetryInfo carries retryDelay; ErrorInfo carries metadata.quotaResetDelay.
        for holder in (detail, detail.get("metadata")):
            if not isinstance(holder, dict):
                continue
            for field in ("retryDelay", "quotaResetDelay"):
                seconds = _duration(holder.get(field))
                if seconds is not None:
                    return seconds
    return None


# --- account-wide exhaustion ---------------------------------------------

_GEMINI_ACCOUNT_MARKERS = ("per day", "perday", "daily", "quota exceeded", "exhausted your")
_GEMINI_MINUTE_MARKERS = ("per minute", "perminute")
_ANTHROPIC_ACCOUNT_MARKERS = ("usage limit", "credit balance")


def _account_exhausted(payload: Any) -> bool:
    return any(
        _codex_account(error) or _gemini_account(error) or _anthropic_account(error)
        for error in _error_objects(payload)
    )


def _codex_account(error: dict[str, Any]) -> bool:
    return error.get("type") == "usage_limit_reached" or error.get("code") == "usage_limit_reached"


def _gemini_account(error: dict[str, Any]) -> bool:
    if error.get("status") != "RESOURCE_EXHAUSTED":
        return False
    text = (str(error.get("message", "")) + " " + json.dumps(error.get("details", ""))).lower()
    # A per-minute quota is a rate limit that refills soon, and a message that
    # names "this model" is about one model; neither says the account is spent.
    if any(m in text for m in _GEMINI_MINUTE_MARKERS) and not any(m in text for m in ("per day", "perday", "daily")):
        return False
    if "on this model" in text:
        return False
    return any(m in text for m in _GEMINI_ACCOUNT_MARKERS)


def _anthropic_account(error: dict[str, Any]) -> bool:
    message = error.get("message")
    if not isinstance(message, str):
        return False
    text = message.lower()
    return any(m in text for m in _ANTHROPIC_ACCOUNT_MARKERS)


# --------------------------------------------------------------------------
# CooldownBook
# --------------------------------------------------------------------------

OnChange = Callable[[Cooldown | None, str, str], None]
_Key = tuple[str, str]


class CooldownBook:
    """Active cooldowns by (credential, model); ``model == "*"`` is account-wide.

    Not thread-safe by design: the gateway uses it from its event loop only.
    """

    def __init__(self, clock: Callable[[], float] = time.time, on_change: OnChange | None = None) -> None:
        self._clock = clock
        self._on_change = on_change
        self._entries: dict[_Key, Cooldown] = {}
        # Consecutive 429s per (credential, model). Kept apart from entries so
        # a cooldown that expires by itself does not reset the backoff: only
        # a success does.
        self._strikes: dict[_Key, int] = {}

    # --- writes ---

    def cool(self, cred_id: str, model: str, decision: Decision) -> Cooldown:
        """Record a cooldown; returns the entry now in force for its key."""
        now = self._clock()
        if decision.status == 429:
            self._strikes[(cred_id, model)] = self._strikes.get((cred_id, model), 0) + 1
        strikes = self._strikes.get((cred_id, model), 0)
        key = (cred_id, ACCOUNT if decision.scope == "account" else model)
        new = Cooldown(cred_id, key[1], now + decision.seconds, decision.reason, decision.status, decision.scope, strikes)
        old = self._entries.get(key)
        if old is not None and old.active(now) and old.until >= new.until:
            # Never shorten: a 60 s 503 must not cut short a 5 h quota reset.
            kept = replace(old, strikes=max(old.strikes, strikes))
            self._set(key, kept)
            return kept
        self._set(key, new)
        return new

    def success(self, cred_id: str, model: str) -> bool:
        """A request succeeded: clear that model, the account entry and the strikes."""
        cleared = self._strikes.pop((cred_id, model), None) is not None
        for key in ((cred_id, model), (cred_id, ACCOUNT)):
            if key in self._entries:
                self._drop(key)
                cleared = True
        return cleared

    def reset(self, cred_id: str | None = None) -> int:
        """Clear by hand (management); returns how many ACTIVE entries were cleared."""
        now = self._clock()
        keys = [k for k in self._entries if cred_id is None or k[0] == cred_id]
        active = sum(1 for k in keys if self._entries[k].active(now))
        for key in keys:
            self._drop(key)
        for key in [k for k in self._strikes if cred_id is None or k[0] == cred_id]:
            del self._strikes[key]
        return active

    def lift(self, cred_id: str, reason_prefix: str) -> int:
        """Clear this credential's entries whose reason starts with `reason_prefix`.

        For cooldowns set from a quota report: the next report showing room
        again ends them at once, without touching cooldowns from real errors.
        """
        keys = [k for k, cd in self._entries.items() if k[0] == cred_id and cd.reason.startswith(reason_prefix)]
        for key in keys:
            self._drop(key)
        return len(keys)

    def restore(self, cooldowns: Iterable[Cooldown]) -> int:
        """Load persisted entries (no on_change calls); returns how many are active.

        Expired ones are ignored, so a restart can never extend a cooldown;
        their strikes still seed the backoff, which only a success resets.
        """
        now = self._clock()
        loaded = 0
        for cd in cooldowns:
            if cd.scope != "account" and cd.model != ACCOUNT:
                self._strikes[(cd.cred_id, cd.model)] = max(self._strikes.get((cd.cred_id, cd.model), 0), cd.strikes)
            if not cd.active(now):
                continue
            key = (cd.cred_id, ACCOUNT if cd.scope == "account" else cd.model)
            old = self._entries.get(key)
            if old is None or old.until < cd.until:
                self._entries[key] = cd
            loaded += 1
        return loaded

    # --- reads ---

    def blocked(self, cred_id: str, model: str) -> Cooldown | None:
        """The entry blocking this credential for this model, if any (the later one)."""
        now = self._clock()
        found = [
            cd for key in ((cred_id, model), (cred_id, ACCOUNT)) if (cd := self._live(key, now)) is not None
        ]
        return max(found, key=lambda cd: cd.until) if found else None

    def strikes(self, cred_id: str, model: str) -> int:
        """Consecutive 429s so far for this pair: pass it to `decide`."""
        return self._strikes.get((cred_id, model), 0)

    def entries(self) -> list[Cooldown]:
        """Active entries, soonest to end first (for the management API)."""
        now = self._clock()
        live = [cd for key in list(self._entries) if (cd := self._live(key, now)) is not None]
        return sorted(live, key=lambda cd: (cd.until, cd.cred_id, cd.model))

    def earliest(self, pairs: Iterable[tuple[str, str]]) -> float | None:
        """Soonest end among the pairs that are blocked, or None if none is.

        For the "every candidate is cooling" answer: ``reset_seconds`` is this
        minus now.
        """
        ends = [cd.until for cred, model in pairs if (cd := self.blocked(cred, model)) is not None]
        return min(ends) if ends else None

    # --- internals ---

    def _live(self, key: _Key, now: float) -> Cooldown | None:
        cd = self._entries.get(key)
        if cd is None:
            return None
        if not cd.active(now):
            self._drop(key)  # lazy expiry: the cooldown ended by itself
            return None
        return cd

    def _set(self, key: _Key, cd: Cooldown) -> None:
        self._entries[key] = cd
        if self._on_change is not None:
            self._on_change(cd, key[0], key[1])

    def _drop(self, key: _Key) -> None:
        del self._entries[key]
        if self._on_change is not None:
            self._on_change(None, key[0], key[1])


# --------------------------------------------------------------------------
# CooldownStore
# --------------------------------------------------------------------------

_TABLE = "cooldowns"
_BUSY_TIMEOUT_MS = 5000


class CooldownStore:
    """SQLite persistence for `Cooldown` entries, one row per (cred_id, model).

    Every method is synchronous and opens its own short connection, because
    sqlite connections belong to one thread and the gateway calls these
    through ``asyncio.to_thread``.
    """

    def __init__(self, path: Path | str, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock

    @contextlib.contextmanager
    def _db(self) -> Iterator[Database]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = Database(self.path)
        try:
            db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            db.enable_wal()
            db.table(_TABLE).create(
                {
                    "cred_id": str,
                    "model": str,
                    "until": float,
                    "reason": str,
                    "status": int,
                    "scope": str,
                    "strikes": int,
                },
                pk=("cred_id", "model"),
                if_not_exists=True,
            )
            yield db
        finally:
            db.close()

    def load(self) -> list[Cooldown]:
        """Active entries; expired rows are pruned rather than returned."""
        if not self.path.exists():
            return []
        now = self._clock()
        with self._db() as db:
            with db.conn:
                db.execute(f"DELETE FROM {_TABLE} WHERE until <= ?", [now])
            return [_from_row(row) for row in db.table(_TABLE).rows]

    def save(self, cooldown: Cooldown) -> None:
        with self._db() as db:
            db.table(_TABLE).upsert(asdict(cooldown), pk=("cred_id", "model"))

    def delete(self, cred_id: str, model: str | None = None) -> int:
        """Delete one row, or every row of a credential when ``model`` is None."""
        if not self.path.exists():
            return 0
        with self._db() as db:
            with db.conn:
                if model is None:
                    cur = db.execute(f"DELETE FROM {_TABLE} WHERE cred_id = ?", [cred_id])
                else:
                    cur = db.execute(f"DELETE FROM {_TABLE} WHERE cred_id = ? AND model = ?", [cred_id, model])
            return cur.rowcount

    def apply(self, cooldown: Cooldown | None, cred_id: str, model: str) -> None:
        """`CooldownBook` ``on_change`` target: save the entry, or delete its row.

        Never raises: a locked or read-only database costs the cooldown its
        persistence across a restart, never the request that set it.
        """
        try:
            if cooldown is None:
                self.delete(cred_id, model)
            else:
                self.save(cooldown)
        except (OSError, sqlite3.Error) as e:
            log.warning("quotio: cooldown of %s not persisted: %s", cred_id, e)


def _from_row(row: Mapping[str, Any]) -> Cooldown:
    scope: Scope = "account" if row.get("scope") == "account" else "model"
    return Cooldown(
        cred_id=str(row["cred_id"]),
        model=str(row["model"]),
        until=float(row["until"]),
        reason=str(row.get("reason") or ""),
        status=int(row.get("status") or 0),
        scope=scope,
        strikes=int(row.get("strikes") or 0),
    )
