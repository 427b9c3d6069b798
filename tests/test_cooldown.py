from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from quotio_core.pool.cooldown import ACCOUNT, Cooldown, CooldownBook, CooldownStore, Decision, decide

NOW = 1_700_000_000.0


def iso(offset: float) -> str:
    return datetime.fromtimestamp(NOW + offset, UTC).isoformat().replace("+00:00", "Z")


def js(obj: object) -> bytes:
    return json.dumps(obj).encode()


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# --------------------------------------------------------------------------
# decide: statuses without headers/body
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "seconds", "scope"),
    [
        (401, 1800, "account"),
        (402, 1800, "account"),
        (403, 1800, "model"),
        (404, 12 * 3600, "model"),
        (408, 60, "model"),
        (500, 60, "model"),
        (502, 60, "model"),
        (503, 60, "model"),
        (504, 60, "model"),
        (529, 60, "model"),
        (0, 60, "model"),
    ],
)
def test_status_rules(status: int, seconds: float, scope: str) -> None:
    d = decide(status, {}, b"", 0, NOW)
    assert d is not None
    assert (d.seconds, d.scope, d.status) == (seconds, scope, status)


@pytest.mark.parametrize("status", [200, 201, 204, 301, 400, 405, 409, 413, 422, 501])
def test_non_cooling_statuses(status: int) -> None:
    assert decide(status, {"retry-after": "30"}, b'{"error":{"type":"usage_limit_reached"}}', 3, NOW) is None


@pytest.mark.parametrize("status", [0, 500, 503, 529])
def test_transient_seconds_configurable(status: int) -> None:
    d = decide(status, {}, b"", 0, NOW, transient_seconds=7.5)
    assert d is not None and d.seconds == 7.5


# --------------------------------------------------------------------------
# decide: 429 reset sources
# --------------------------------------------------------------------------

HTTP_DATE_IN_90S = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "body", "seconds"),
    [
        ({"retry-after": "30"}, b"", 30),
        ({"retry-after": " 12.5 "}, b"", 12.5),
        ({"retry-after": HTTP_DATE_IN_90S}, b"", 90),
        ({"retry-after-ms": "2500"}, b"", 2.5),
        # retry-after-ms is more precise than retry-after when both are sent
        ({"retry-after-ms": "1500", "retry-after": "2"}, b"", 1.5),
        ({"retry-after": "0"}, b"", 1.0),  # clamped: still move on to another credential
        # Anthropic: latest among exhausted buckets
        (
            {
                "anthropic-ratelimit-requests-reset": iso(10),
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-tokens-reset": iso(40),
                "anthropic-ratelimit-tokens-remaining": "0",
                "anthropic-ratelimit-input-tokens-reset": iso(300),
                "anthropic-ratelimit-input-tokens-remaining": "5000",
            },
            b"",
            40,
        ),
        # Anthropic: none exhausted -> earliest reset
        (
            {
                "anthropic-ratelimit-requests-reset": iso(25),
                "anthropic-ratelimit-requests-remaining": "3",
                "anthropic-ratelimit-output-tokens-reset": iso(8),
                "anthropic-ratelimit-output-tokens-remaining": "100",
            },
            b"",
            8,
        ),
        # Anthropic: exhausted output bucket only
        (
            {
                "anthropic-ratelimit-requests-reset": iso(5),
                "anthropic-ratelimit-requests-remaining": "10",
                "anthropic-ratelimit-output-tokens-reset": iso(61),
                "anthropic-ratelimit-output-tokens-remaining": "0",
            },
            b"",
            61,
        ),
        ({"anthropic-ratelimit-unified-reset": str(int(NOW + 3600))}, b"", 3600),
        # Codex body
        (
            {},
            js({"error": {"type": "rate_limit_exceeded", "resets_in_seconds": 120}}),
            120,
        ),
        ({}, js({"error": {"type": "rate_limit_exceeded", "resets_at": int(NOW) + 600}}), 600),
        # Gemini RetryInfo
        (
            {},
            js(
                {
                    "error": {
                        "code": 429,
                        "status": "RESOURCE_EXHAUSTED",
                        "message": "Resource has been exhausted (e.g. check quota).",
                        "details": [
                            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "23s"}
                        ],
                    }
                }
            ),
            23,
        ),
        (
            {},
            js({"error": {"details": [{"@type": "x.RetryInfo", "retryDelay": "1.5s"}]}}),
            1.5,
        ),
        # Code Assist ErrorInfo metadata.quotaResetDelay, wrapped in a list
        (
            {},
            js(
                [
                    {
                        "error": {
                            "code": 429,
                            "details": [
                                {
                                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                    "reason": "RATE_LIMIT_EXCEEDED",
                                    "metadata": {"quotaResetDelay": "1h2m3.5s"},
                                }
                            ],
                        }
                    }
                ]
            ),
            3723.5,
        ),
        ({}, js({"error": {"details": [{"quotaResetDelay": "500ms"}]}}), 1.0),
    ],
)
def test_429_reset_sources(headers: dict[str, str], body: bytes, seconds: float) -> None:
    d = decide(429, headers, body, 5, NOW)
    assert d is not None
    assert d.status == 429
    assert d.seconds == pytest.approx(seconds, abs=0.01)


@pytest.mark.parametrize(
    ("strikes", "seconds"),
    [(0, 1), (1, 2), (2, 4), (3, 8), (10, 1024), (11, 1800), (12, 1800), (500, 1800)],
)
def test_429_exponential_backoff_and_cap(strikes: int, seconds: float) -> None:
    d = decide(429, {}, b"", strikes, NOW)
    assert d is not None and d.seconds == seconds and d.scope == "model"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"retry-after": "soon"}, b"not json"),
        ({"retry-after": "-5"}, b"{"),
        ({"retry-after-ms": "nan"}, b"\xff\xfe"),
        ({"anthropic-ratelimit-requests-reset": "yesterday"}, b"[]"),
        ({"anthropic-ratelimit-requests-reset": "2024-01-01T00:00:00"}, b"null"),  # no zone
        ({}, js({"error": "string error"})),
        ({}, js({"error": {"details": "nope", "resets_in_seconds": "12"}})),
        ({}, js({"error": {"details": [1, None, {"retryDelay": 23}, {"retryDelay": "23 s"}]}})),
        ({}, js({"error": {"resets_in_seconds": True}})),
        ({}, js([1, 2, {"error": None}])),
    ],
)
def test_garbage_falls_back_to_backoff(headers: dict[str, str], body: bytes) -> None:
    d = decide(429, headers, body, 2, NOW)
    assert d == Decision(4.0, "model", d.reason, 429)


def test_provider_reset_is_clamped() -> None:
    d = decide(429, {}, js({"error": {"resets_in_seconds": 10**12}}), 0, NOW)
    assert d is not None and d.seconds == 31 * 24 * 3600


def test_decide_never_raises_on_odd_headers() -> None:
    class Weird(dict):
        def get(self, *_a, **_k):  # type: ignore[override]
            raise RuntimeError("boom")

    d = decide(429, Weird(), b"", 1, NOW)
    assert d is not None and d.seconds == 2
    assert decide(503, Weird(), b"", 0, NOW) is not None


# --------------------------------------------------------------------------
# decide: account-wide exhaustion
# --------------------------------------------------------------------------

CODEX_USAGE = js(
    {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached", "resets_in_seconds": 7200}}
)
GEMINI_DAILY = js(
    {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "Quota exceeded for quota metric 'Generate Content API requests per day'",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3600s"}],
        }
    }
)
GEMINI_EXHAUSTED_YOUR = js(
    {"error": {"status": "RESOURCE_EXHAUSTED", "message": "You have exhausted your daily quota."}}
)
GEMINI_DETAILS_PER_DAY = js(
    {
        "error": {
            "status": "RESOURCE_EXHAUSTED",
            "message": "Resource exhausted.",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
                }
            ],
        }
    }
)
GEMINI_PER_MINUTE = js(
    {
        "error": {
            "status": "RESOURCE_EXHAUSTED",
            "message": "Quota exceeded for quota metric 'Generate Content API requests per minute'",
        }
    }
)
GEMINI_THIS_MODEL = js(
    {"error": {"status": "RESOURCE_EXHAUSTED", "message": "You have exhausted your capacity on this model."}}
)
ANTHROPIC_USAGE = js(
    {"type": "error", "error": {"type": "rate_limit_error", "message": "This organization has reached its usage limit."}}
)
ANTHROPIC_CREDIT = js(
    {"type": "error", "error": {"type": "rate_limit_error", "message": "Your credit balance is too low."}}
)
ANTHROPIC_RATE = js(
    {"type": "error", "error": {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your per-minute rate limit"}}
)


@pytest.mark.parametrize(
    ("body", "scope", "seconds"),
    [
        (CODEX_USAGE, "account", 7200),
        (GEMINI_DAILY, "account", 3600),
        (GEMINI_EXHAUSTED_YOUR, "account", 1),  # no reset hint: backoff, strike 0
        (GEMINI_DETAILS_PER_DAY, "account", 1),
        (GEMINI_PER_MINUTE, "model", 1),
        (GEMINI_THIS_MODEL, "model", 1),
        (ANTHROPIC_USAGE, "account", 1),
        (ANTHROPIC_CREDIT, "account", 1),
        (ANTHROPIC_RATE, "model", 1),
        (js({"error": {"type": "rate_limit_exceeded"}}), "model", 1),
    ],
)
def test_account_wide_detection(body: bytes, scope: str, seconds: float) -> None:
    d = decide(429, {}, body, 0, NOW)
    assert d is not None
    assert (d.scope, d.seconds) == (scope, seconds)


def test_account_quota_text_on_non_429_is_not_account_wide() -> None:
    d = decide(403, {}, ANTHROPIC_USAGE, 0, NOW)
    assert d is not None and d.scope == "model" and d.seconds == 1800


# --------------------------------------------------------------------------
# CooldownBook
# --------------------------------------------------------------------------


def d429(seconds: float, scope: str = "model") -> Decision:
    return Decision(seconds, scope, "429 test", 429)  # type: ignore[arg-type]


def test_cooldown_ends_exactly_at_its_time() -> None:
    clock = Clock()
    book = CooldownBook(clock)
    cd = book.cool("a", "m", d429(10))
    assert cd.until == NOW + 10 and cd.remaining(NOW + 4) == 6
    clock.t = NOW + 9.999
    assert book.blocked("a", "m") == cd
    clock.t = NOW + 10
    assert book.blocked("a", "m") is None
    assert book.entries() == []


def test_model_scope_does_not_block_other_models_or_credentials() -> None:
    book = CooldownBook(Clock())
    book.cool("a", "m1", d429(10))
    assert book.blocked("a", "m1") is not None
    assert book.blocked("a", "m2") is None
    assert book.blocked("b", "m1") is None


def test_account_scope_blocks_every_model() -> None:
    book = CooldownBook(Clock())
    cd = book.cool("a", "m1", d429(100, "account"))
    assert cd.model == ACCOUNT and cd.scope == "account"
    assert book.blocked("a", "m1") == cd
    assert book.blocked("a", "anything-else") == cd
    assert book.blocked("b", "m1") is None


def test_blocked_returns_later_of_model_and_account() -> None:
    book = CooldownBook(Clock())
    book.cool("a", "m", d429(50))
    acct = book.cool("a", "m", d429(200, "account"))
    assert book.blocked("a", "m") == acct


def test_never_shortened_but_extended() -> None:
    clock = Clock()
    book = CooldownBook(clock)
    long = book.cool("a", "m", d429(3600))
    kept = book.cool("a", "m", Decision(60, "model", "503", 503))
    assert kept.until == long.until and kept.reason == long.reason
    clock.t = NOW + 100
    assert book.blocked("a", "m").until == NOW + 3600
    longer = book.cool("a", "m", d429(7200))
    assert longer.until == NOW + 100 + 7200


def test_expired_entry_is_replaced_by_shorter_one() -> None:
    clock = Clock()
    book = CooldownBook(clock)
    book.cool("a", "m", d429(3600))
    clock.t = NOW + 4000
    fresh = book.cool("a", "m", Decision(60, "model", "503", 503))
    assert fresh.until == NOW + 4060 and fresh.status == 503


def test_strikes_count_429s_only_and_feed_backoff() -> None:
    clock = Clock()
    book = CooldownBook(clock)
    for expected in (1, 2, 4, 8):
        d = decide(429, {}, b"", book.strikes("a", "m"), clock.t)
        assert d is not None and d.seconds == expected
        cd = book.cool("a", "m", d)
        clock.t = cd.until  # each cooldown runs out before the next 429
    assert book.strikes("a", "m") == 4
    book.cool("a", "m", Decision(60, "model", "503", 503))
    assert book.strikes("a", "m") == 4  # a 503 is not a 429 strike
    assert book.strikes("a", "other") == 0


def test_success_clears_model_account_and_strikes() -> None:
    book = CooldownBook(Clock())
    book.cool("a", "m", d429(10))
    book.cool("a", "m", d429(10, "account"))
    book.cool("a", "other", d429(10))
    assert book.strikes("a", "m") == 2
    assert book.success("a", "m") is True
    assert book.blocked("a", "m") is None
    assert book.strikes("a", "m") == 0
    assert book.blocked("a", "other") is not None  # other model's own entry stays
    assert book.success("a", "m") is False


def test_reset_by_hand() -> None:
    book = CooldownBook(Clock())
    book.cool("a", "m1", d429(10))
    book.cool("a", "m2", d429(10, "account"))
    book.cool("b", "m1", d429(10))
    assert book.reset("a") == 2
    assert book.blocked("a", "m1") is None and book.strikes("a", "m1") == 0
    assert book.blocked("b", "m1") is not None
    assert book.reset() == 1
    assert book.entries() == []


def test_entries_are_active_only_and_sorted() -> None:
    clock = Clock()
    book = CooldownBook(clock)
    book.cool("a", "m", d429(30))
    book.cool("b", "m", d429(5))
    book.cool("c", "m", d429(1))
    clock.t = NOW + 2
    assert [(e.cred_id, e.until) for e in book.entries()] == [("b", NOW + 5), ("a", NOW + 30)]


def test_earliest_for_all_cooling_report() -> None:
    book = CooldownBook(Clock())
    book.cool("a", "m", d429(300))
    book.cool("b", "m", d429(30, "account"))
    assert book.earliest([("a", "m"), ("b", "m")]) == NOW + 30
    assert book.earliest([("c", "m")]) is None


def test_on_change_hook_reports_every_change() -> None:
    clock = Clock()
    seen: list[tuple[float | None, str, str]] = []
    book = CooldownBook(clock, on_change=lambda cd, c, m: seen.append((cd.until if cd else None, c, m)))
    book.cool("a", "m", d429(10))
    book.cool("a", "m", d429(20, "account"))
    book.success("a", "m")
    book.cool("b", "m", d429(5))
    clock.t = NOW + 6
    assert book.blocked("b", "m") is None  # lazy expiry also reports the removal
    assert seen == [
        (NOW + 10, "a", "m"),
        (NOW + 20, "a", ACCOUNT),
        (None, "a", "m"),
        (None, "a", ACCOUNT),
        (NOW + 5, "b", "m"),
        (None, "b", "m"),
    ]


# --------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------


def test_store_round_trip(tmp_path) -> None:
    clock = Clock()
    store = CooldownStore(tmp_path / "state" / "q.db", clock=clock)
    assert store.load() == []
    book = CooldownBook(clock, on_change=store.apply)
    a = book.cool("a", "m", d429(60))
    acct = book.cool("b", "m", Decision(7200, "account", "codex usage", 429))
    book.cool("c", "m", d429(10))
    book.success("c", "m")

    loaded = store.load()
    assert sorted(loaded, key=lambda c: c.cred_id) == [a, acct]

    # "restart": a fresh book from the persisted rows
    book2 = CooldownBook(clock)
    assert book2.restore(store.load()) == 2
    assert book2.blocked("a", "m") == a
    assert book2.blocked("b", "any-model") == acct
    assert book2.strikes("a", "m") == 1  # backoff continues after restart


def test_restart_after_expiry_is_not_blocking(tmp_path) -> None:
    clock = Clock()
    store = CooldownStore(tmp_path / "q.db", clock=clock)
    book = CooldownBook(clock, on_change=store.apply)
    book.cool("a", "m", d429(60))
    book.cool("a", "x", d429(3600, "account"))

    clock.t = NOW + 3600  # the process was down past both reset times
    assert store.load() == []  # expired rows are skipped …
    with sqlite3.connect(tmp_path / "q.db") as conn:  # … and pruned
        assert conn.execute("select count(*) from cooldowns").fetchone()[0] == 0

    # Even if handed stale entries, restore never makes them blocking.
    stale = Cooldown("z", "m", NOW + 10, "old", 429, "model", 3)
    book2 = CooldownBook(clock)
    assert book2.restore([stale]) == 0
    assert book2.blocked("z", "m") is None
    assert book2.strikes("z", "m") == 3


def test_store_delete_and_wal(tmp_path) -> None:
    clock = Clock()
    store = CooldownStore(tmp_path / "q.db", clock=clock)
    for model in ("m1", "m2", ACCOUNT):
        store.save(Cooldown("a", model, NOW + 60, "r", 429, "account" if model == ACCOUNT else "model", 1))
    store.save(Cooldown("b", "m1", NOW + 60, "r", 429, "model", 1))
    store.save(Cooldown("b", "m1", NOW + 90, "later", 503, "model", 1))  # upsert on (cred_id, model)
    assert store.delete("a", "m1") == 1
    assert {(c.cred_id, c.model) for c in store.load()} == {("a", "m2"), ("a", ACCOUNT), ("b", "m1")}
    assert [c.until for c in store.load() if c.cred_id == "b"] == [NOW + 90]
    assert store.delete("a") == 2
    assert [c.cred_id for c in store.load()] == ["b"]
    with sqlite3.connect(tmp_path / "q.db") as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_store_delete_without_db_creates_nothing(tmp_path) -> None:
    store = CooldownStore(tmp_path / "missing.db")
    assert store.delete("a") == 0
    assert store.load() == []
    assert not (tmp_path / "missing.db").exists()


def test_real_clock_cooldown_is_in_the_future() -> None:
    book = CooldownBook()
    cd = book.cool("a", "m", Decision(60, "model", "503", 503))
    assert book.blocked("a", "m") == cd
    now = datetime.now(UTC) + timedelta(seconds=59)
    assert cd.active(now.timestamp())
