"""Per-account quota fetchers against the fake quota endpoints (tests/fakes/quota.py).

Each fetcher is called directly with a real httpx client; the fake checks the
headers, query and body the provider's endpoint needs and answers in its
published shape, so a passing mapping test also pins the request.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from quotio_core.pool.credentials import Credential, credential_from_auth_file
from quotio_core.providers.claude import quota as claude_quota
from quotio_core.providers.codex import quota as codex_quota
from quotio_core.providers.gemini import quota as gemini_quota
from quotio_core.providers.github_copilot import quota as github_copilot_quota
from quotio_core.providers.kiro import quota as kiro_quota
from quotio_core.pool.quota import fetcher_for
from quotio_core.providers import PROVIDERS, QuotaContext, QuotaReport
from quotio_core.providers.quotas import timestamp
from quotio_core.providers import merge_upstreams
from tests.fakes.quota import DAY, HOUR, FakeQuota, FakeWindow
from tests.fakes.upstreams import closed_port

FETCHERS = {
    "claude": claude_quota,
    "codex": codex_quota,
    "gemini": gemini_quota,
    "github-copilot": github_copilot_quota,
    "kiro": kiro_quota,
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeQuota]:
    with FakeQuota() as f:
        yield f


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def ctx_for(fake: FakeQuota, http: httpx.AsyncClient, provider: str, **headers: str) -> QuotaContext:
    return QuotaContext(urls=merge_upstreams(fake.upstreams)[provider], http=http, headers=headers)


def jwt(claims: dict[str, Any]) -> str:
    def b64(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none'})}.{b64(claims)}.sig"


def auth_file(provider: str, token: str, **extra: Any) -> Credential:
    """A credential parsed from the auth file a login would write."""
    if provider == "gemini":
        data = {"type": "gemini", "token": {"access_token": token}, "email": "g@example.com", **extra}
    else:
        data = {"type": provider, "access_token": token, "email": "u@example.com", **extra}
    return credential_from_auth_file(f"{provider}-{token}.json", data)


def api_key(provider: str, secret: str) -> Credential:
    return Credential(id=f"{provider}-api-key[0]", provider=provider, kind="api-key", source="config", secret=secret)


def window(report: QuotaReport, name: str):
    return next(w for w in report.windows if w.name == name)


# --- registry and URLs -------------------------------------------------------------


def test_every_registered_fetcher_imports_and_names_its_provider() -> None:
    for provider in (p.id for p in PROVIDERS if p.quota is not None):
        module = fetcher_for(provider)
        assert module is not None and module.PROVIDER == provider


def test_qwen_and_iflow_have_no_fetcher() -> None:
    assert fetcher_for("qwen") is None and fetcher_for("iflow") is None


def test_fake_overrides_name_real_upstream_urls(fake: FakeQuota) -> None:
    merged = merge_upstreams(fake.upstreams)
    for provider, urls in fake.upstreams.items():
        for name, url in urls.items():
            assert merged[provider][name] == url
    defaults = merge_upstreams(None)
    assert defaults["gemini"]["quota-url"] == "https://cloudcode-pa.googleapis.com/v1internal:retrieveUserQuota"
    assert defaults["github-copilot"]["quota-url"] == "https://api.github.com/copilot_internal/user"
    assert defaults["codex"]["usage-url"] == "https://chatgpt.com/backend-api/wham/usage"
    assert defaults["kiro"]["usage-url"].endswith("/getUsageLimits")
    moved = merge_upstreams({"gemini": {"base-url": "http://127.0.0.1:9/ca"}})
    assert moved["gemini"]["quota-url"] == "http://127.0.0.1:9/ca/v1internal:retrieveUserQuota"


# --- Claude ------------------------------------------------------------------------


async def test_claude_maps_windows_and_sends_the_oauth_beta(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    now = time.time()
    fake.add("claude", "cl-tok-1", windows={
        "five_hour": FakeWindow(used=12.5, resets_at=now + HOUR),
        "seven_day": FakeWindow(used=40, resets_at=now + 3 * DAY),
        "seven_day_opus": FakeWindow(used=100, resets_at=now + 2 * DAY),
    })
    report = await claude_quota.fetch(ctx_for(fake, http, "claude"), auth_file("claude", "cl-tok-1"))
    assert report.status == "ok", report.error
    assert [w.name for w in report.windows] == ["five_hour", "seven_day", "seven_day_opus"]
    five = window(report, "five_hour")
    assert (five.used, five.limit, five.remaining_pct) == (12.5, 100.0, 87.5)
    assert five.resets_at == pytest.approx(now + HOUR, abs=1e-3)
    assert window(report, "seven_day").remaining_pct == 60.0
    assert window(report, "seven_day_opus").exhausted
    req = fake.last
    assert (req.method, req.path) == ("GET", "/api/oauth/usage")
    assert req.headers["authorization"] == "Bearer cl-tok-1"
    assert req.headers["anthropic-beta"] == "oauth-2025-04-20"
    assert req.headers["user-agent"] == claude_quota.DEFAULT_HEADERS["user-agent"]


async def test_claude_header_defaults_replace_the_client_identity(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("claude", "cl-tok-2")
    ctx = ctx_for(fake, http, "claude", **{"user-agent": "claude-code/9.9.9"})
    report = await claude_quota.fetch(ctx, auth_file("claude", "cl-tok-2"))
    assert report.status == "ok"
    assert fake.last.headers["user-agent"] == "claude-code/9.9.9"


async def test_claude_without_the_beta_header_is_forbidden(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("claude", "cl-tok-3")
    ctx = ctx_for(fake, http, "claude", **{"anthropic-beta": "something-else"})
    report = await claude_quota.fetch(ctx, auth_file("claude", "cl-tok-3"))
    assert report.status == "forbidden"
    assert "anthropic-beta" in fake.errors[-1]


async def test_claude_extra_usage_when_enabled() -> None:
    report = claude_quota.parse(
        {"five_hour": None, "extra_usage": {"is_enabled": True, "monthly_limit": 5000, "used_credits": 1250, "utilization": 25}}
    )
    extra = window(report, "extra_usage")
    assert (extra.used, extra.limit, extra.remaining_pct, extra.unit) == (1250, 5000, 75.0, "credits")


# --- Codex -------------------------------------------------------------------------


async def test_codex_maps_session_weekly_and_plan(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    now = time.time()
    fake.add("codex", "cx-tok-1", account_id="acct-1", plan="pro", windows={
        "primary": FakeWindow(used=30, resets_at=now + 2 * HOUR, window_seconds=5 * HOUR),
        "secondary": FakeWindow(used=75, resets_at=now + 4 * DAY, window_seconds=7 * DAY),
    })
    cred = auth_file("codex", "cx-tok-1", account_id="acct-1")
    report = await codex_quota.fetch(ctx_for(fake, http, "codex"), cred)
    assert report.status == "ok", report.error
    assert report.plan == "pro"
    session, weekly = report.windows
    assert (session.name, session.used, session.remaining_pct) == ("session", 30, 70.0)
    assert session.resets_at == int(now + 2 * HOUR)
    assert (weekly.name, weekly.remaining_pct, weekly.resets_at) == ("weekly", 25.0, int(now + 4 * DAY))
    req = fake.last
    assert (req.method, req.path) == ("GET", "/backend-api/wham/usage")
    assert req.headers["authorization"] == "Bearer cx-tok-1"
    assert req.headers["chatgpt-account-id"] == "acct-1"
    assert req.headers["originator"] == "codex_cli_rs"
    assert req.headers["user-agent"].startswith("codex_cli_rs/")


async def test_codex_account_id_from_the_id_token(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("codex", "cx-tok-2", account_id="acct-from-jwt")
    id_token = jwt({"https://api.openai.com/auth": {"chatgpt_account_id": "acct-from-jwt"}})
    report = await codex_quota.fetch(ctx_for(fake, http, "codex"), auth_file("codex", "cx-tok-2", id_token=id_token))
    assert report.status == "ok"
    assert fake.last.headers["chatgpt-account-id"] == "acct-from-jwt"


async def test_codex_wrong_account_is_forbidden(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("codex", "cx-tok-3", account_id="acct-right")
    report = await codex_quota.fetch(ctx_for(fake, http, "codex"), auth_file("codex", "cx-tok-3", account_id="acct-wrong"))
    assert report.status == "forbidden"
    assert report.error == "Codex usage: HTTP 403"


async def test_codex_exhausted_window_and_its_reset(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("codex", "cx-tok-4")
    fake.exhaust("cx-tok-4", "secondary", resets_in=600)
    report = await codex_quota.fetch(ctx_for(fake, http, "codex"), auth_file("codex", "cx-tok-4"))
    weekly = window(report, "weekly")
    assert weekly.exhausted and weekly.remaining_pct == 0.0
    assert weekly.resets_at == pytest.approx(time.time() + 600, abs=5)
    assert not window(report, "session").exhausted


async def test_codex_limit_reached_below_100_marks_the_fullest_window(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("codex", "cx-tok-5")
    fake.set_used("cx-tok-5", "primary", 99)
    fake.set_used("cx-tok-5", "secondary", 40)
    fake.account("cx-tok-5").limit_reached = True
    report = await codex_quota.fetch(ctx_for(fake, http, "codex"), auth_file("codex", "cx-tok-5"))
    session, weekly = report.windows
    assert session.exhausted and session.used == 99
    assert not weekly.exhausted and weekly.remaining_pct == 60.0


def test_codex_reset_after_seconds_and_additional_limits() -> None:
    body = {
        "plan_type": "plus",
        "rate_limit": {"limit_reached": False, "primary_window": {"used_percent": 10, "reset_after_seconds": 120}},
        "additional_rate_limits": [
            {
                "limit_name": "codex_other",
                "metered_feature": "codex_other",
                "rate_limit": {"limit_reached": True, "primary_window": {"used_percent": 70, "reset_at": 1_900_000_000}},
            }
        ],
    }
    report = codex_quota.parse(body, now=1_000.0)
    assert [w.name for w in report.windows] == ["session", "codex_other.session"]
    assert report.windows[0].resets_at == 1_120.0 and report.windows[0].model is None
    other = report.windows[1]
    assert other.exhausted and other.resets_at == 1_900_000_000
    assert other.model == "codex_other"
    assert report.fetched_at == 1_000.0


def test_codex_windows_are_named_after_their_length() -> None:
    week, month = 7 * 86400, 30 * 86400
    weekly_only = codex_quota.parse(
        {"plan_type": "free", "rate_limit": {"primary_window": {"used_percent": 12, "limit_window_seconds": week}, "secondary_window": None}}
    )
    assert [w.name for w in weekly_only.windows] == ["weekly"]
    spark = codex_quota.parse(
        {
            "rate_limit": {
                "primary_window": {"used_percent": 1, "limit_window_seconds": 18000},
                "secondary_window": {"used_percent": 2, "limit_window_seconds": month},
            },
            "additional_rate_limits": [
                {"limit_name": "GPT-5.3-Codex-Spark", "metered_feature": "codex_bengalfox", "rate_limit": {
                    "primary_window": {"used_percent": 100, "limit_window_seconds": week},
                    "secondary_window": {"used_percent": 3, "limit_window_seconds": week},
                }}
            ],
        }
    )
    assert [w.name for w in spark.windows] == [
        "session", "monthly", "GPT-5.3-Codex-Spark.weekly", "GPT-5.3-Codex-Spark.secondary"
    ]
    side = spark.windows[2]
    assert side.exhausted and side.model == "gpt-5.3-codex-spark"


async def test_codex_api_key_is_unsupported(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    before = len(fake.requests)
    report = await codex_quota.fetch(ctx_for(fake, http, "codex"), api_key("codex", "sk-proj-x"))
    assert report.status == "unsupported"
    assert len(fake.requests) == before


# --- Gemini ------------------------------------------------------------------------


async def test_gemini_one_window_per_model(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    now = time.time()
    fake.add("gemini", "ge-tok-1", project="proj-1", windows={
        "gemini-2.5-pro": FakeWindow(used=25, resets_at=now + 6 * HOUR),
        "gemini-2.5-flash": FakeWindow(used=100, resets_at=now + HOUR),
    })
    report = await gemini_quota.fetch(ctx_for(fake, http, "gemini"), auth_file("gemini", "ge-tok-1", project_id="proj-1"))
    assert report.status == "ok", report.error
    pro, flash = report.windows
    assert (pro.name, pro.remaining_pct, pro.used, pro.limit) == ("gemini-2.5-pro", 75.0, 25.0, 100.0)
    assert (pro.model, flash.model) == ("gemini-2.5-pro", "gemini-2.5-flash")
    assert pro.resets_at == pytest.approx(now + 6 * HOUR, abs=1)
    assert flash.name == "gemini-2.5-flash" and flash.exhausted
    req = fake.last
    assert (req.method, req.path) == ("POST", "/v1internal:retrieveUserQuota")
    assert req.json == {"project": "proj-1"}
    assert req.headers["authorization"] == "Bearer ge-tok-1"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"].startswith("GeminiCLI/")


async def test_gemini_asks_about_the_first_of_several_projects(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("gemini", "ge-tok-2", project="proj-a")
    cred = auth_file("gemini", "ge-tok-2", project_id="proj-a, proj-b")
    assert (await gemini_quota.fetch(ctx_for(fake, http, "gemini"), cred)).status == "ok"
    assert fake.last.json == {"project": "proj-a"}


async def test_gemini_other_project_is_forbidden(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("gemini", "ge-tok-3", project="proj-mine")
    cred = auth_file("gemini", "ge-tok-3", project_id="proj-theirs")
    report = await gemini_quota.fetch(ctx_for(fake, http, "gemini"), cred)
    assert report.status == "forbidden"


async def test_gemini_without_a_project_asks_nothing(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    before = len(fake.requests)
    report = await gemini_quota.fetch(ctx_for(fake, http, "gemini"), auth_file("gemini", "ge-tok-4"))
    assert report.status == "error" and "project_id" in report.error
    assert len(fake.requests) == before


def test_gemini_missing_fraction_and_token_types() -> None:
    report = gemini_quota.parse(
        {
            "buckets": [
                {"modelId": "gemini-2.5-pro", "tokenType": "REQUESTS", "remainingFraction": 0.5},
                {"modelId": "gemini-2.5-pro", "tokenType": "INPUT_TOKENS", "resetTime": "2030-01-02T03:04:05.123456789Z"},
                {"tokenType": "REQUESTS", "remainingFraction": 1},
                "not a bucket",
            ]
        }
    )
    a, b, c = report.windows
    assert (a.name, a.remaining_pct) == ("gemini-2.5-pro:REQUESTS", 50.0)
    assert (b.name, b.remaining_pct, b.used) == ("gemini-2.5-pro:INPUT_TOKENS", None, None)
    assert not b.exhausted
    assert b.resets_at == pytest.approx(1893553445.123456)
    assert (c.name, c.remaining_pct, c.model) == ("REQUESTS", 100.0, None)
    assert a.model == b.model == "gemini-2.5-pro"
    assert gemini_quota.parse({}).windows == ()


async def test_gemini_api_key_is_unsupported(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    report = await gemini_quota.fetch(ctx_for(fake, http, "gemini"), api_key("gemini", "AIza-x"))
    assert report.status == "unsupported"


# --- GitHub Copilot ----------------------------------------------------------------


async def test_copilot_snapshots_unlimited_and_plan(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    reset = time.time() + 10 * DAY
    fake.add("github-copilot", "gho_tok1", plan="business", windows={
        "chat": FakeWindow(unlimited=True, resets_at=reset),
        "completions": FakeWindow(unlimited=True, resets_at=reset),
        "premium_interactions": FakeWindow(used=120, limit=300, resets_at=reset),
    })
    report = await github_copilot_quota.fetch(ctx_for(fake, http, "github-copilot"), auth_file("github-copilot", "gho_tok1"))
    assert report.status == "ok", report.error
    assert report.plan == "business"
    assert [w.name for w in report.windows] == ["premium_interactions", "chat", "completions"]
    premium = window(report, "premium_interactions")
    assert (premium.used, premium.limit, premium.remaining_pct, premium.unit) == (120, 300, 60.0, "requests")
    assert premium.resets_at == pytest.approx(reset, abs=1)
    chat = window(report, "chat")
    assert (chat.remaining_pct, chat.limit, chat.used) == (100.0, None, None)
    req = fake.last
    assert (req.method, req.path) == ("GET", "/copilot_internal/user")
    assert req.headers["authorization"] == "token gho_tok1"
    assert req.headers["accept"] == "application/vnd.github+json"
    assert req.headers["x-github-api-version"] == "2022-11-28"


async def test_copilot_uses_the_github_token_not_the_exchanged_one(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("github-copilot", "gho_tok2")
    exchanged = replace(auth_file("github-copilot", "gho_tok2"), secret="tid=copilot-session-token")
    report = await github_copilot_quota.fetch(ctx_for(fake, http, "github-copilot"), exchanged)
    assert report.status == "ok"
    assert fake.last.headers["authorization"] == "token gho_tok2"


async def test_copilot_free_plan_shape(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    reset = time.time() + 5 * DAY
    fake.add("github-copilot", "gho_tok3", plan="free", free_shape=True, windows={
        "chat": FakeWindow(used=10, limit=50, resets_at=reset),
        "completions": FakeWindow(used=2000, limit=2000, resets_at=reset),
    })
    report = await github_copilot_quota.fetch(ctx_for(fake, http, "github-copilot"), auth_file("github-copilot", "gho_tok3"))
    assert report.plan == "free"
    chat, completions = report.windows
    assert (chat.name, chat.used, chat.limit, chat.remaining_pct) == ("chat", 10, 50, 80.0)
    assert completions.exhausted
    # limited_user_reset_date is a bare date: midnight UTC of that day.
    assert chat.resets_at is not None and 0 <= reset - chat.resets_at < DAY


async def test_copilot_exhausted_premium_bucket(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("github-copilot", "gho_tok4")
    fake.exhaust("gho_tok4", "premium_interactions")
    report = await github_copilot_quota.fetch(ctx_for(fake, http, "github-copilot"), auth_file("github-copilot", "gho_tok4"))
    premium = window(report, "premium_interactions")
    assert premium.exhausted and premium.used == 300


async def test_copilot_api_version_is_a_header_default(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("github-copilot", "gho_tok5")
    ctx = ctx_for(fake, http, "github-copilot", **{"x-github-api-version": "2099-01-01"})
    report = await github_copilot_quota.fetch(ctx, auth_file("github-copilot", "gho_tok5"))
    assert fake.last.headers["x-github-api-version"] == "2099-01-01"
    assert report.status == "error" and report.error == "Copilot quota: HTTP 400"


async def test_copilot_without_a_github_token(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    cred = credential_from_auth_file("github-copilot-x.json", {"type": "github-copilot", "username": "x"})
    report = await github_copilot_quota.fetch(ctx_for(fake, http, "github-copilot"), cred)
    assert report.status == "error" and "GitHub token" in report.error


def test_copilot_percent_from_counts_and_negative_remaining() -> None:
    report = github_copilot_quota.parse(
        {
            "quota_snapshots": {"premium_interactions": {"entitlement": 50, "remaining": -3, "unlimited": False}},
            "quota_reset_date": "2030-01-01",
            "access_type_sku": "plus_monthly_subscriber_quota",
        }
    )
    (premium,) = report.windows
    assert (premium.used, premium.remaining_pct) == (53, 0.0)
    assert premium.resets_at == timestamp("2030-01-01T00:00:00Z")
    assert report.plan == "plus_monthly_subscriber_quota"


# --- Kiro --------------------------------------------------------------------------


async def test_kiro_maps_credits_plan_and_sends_the_profile(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    reset = time.time() + 20 * DAY
    arn = "arn:aws:codewhisperer:us-east-1:123456789012:profile/FAKEPROFILE"
    fake.add("kiro", "kr-tok-1", plan="KIRO PRO", profile_arn=arn, windows={
        "CREDIT": FakeWindow(used=12.5, limit=50, resets_at=reset),
    })
    report = await kiro_quota.fetch(ctx_for(fake, http, "kiro"), auth_file("kiro", "kr-tok-1", profile_arn=arn))
    assert report.status == "ok", report.error
    assert report.plan == "KIRO PRO"
    (credit,) = report.windows
    assert (credit.name, credit.used, credit.limit, credit.remaining_pct, credit.unit) == ("credit", 12.5, 50, 75.0, "credits")
    assert credit.resets_at == int(reset)
    req = fake.last
    assert (req.method, req.path) == ("GET", "/getUsageLimits")
    assert req.query == {"isEmailRequired": "true", "origin": "AI_EDITOR", "profileArn": arn}
    assert req.headers["authorization"] == "Bearer kr-tok-1"
    assert req.headers["accept"] == "application/json"


async def test_kiro_builder_id_sends_no_profile(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("kiro", "kr-tok-2")
    report = await kiro_quota.fetch(ctx_for(fake, http, "kiro"), auth_file("kiro", "kr-tok-2"))
    assert report.status == "ok"
    assert "profileArn" not in fake.last.query


async def test_kiro_active_trial_adds_to_the_month(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("kiro", "kr-tok-3", windows={
        "CREDIT": FakeWindow(used=50, limit=50, resets_at=time.time() + DAY, trial=(100, 500, time.time() + 9 * DAY)),
    })
    report = await kiro_quota.fetch(ctx_for(fake, http, "kiro"), auth_file("kiro", "kr-tok-3"))
    (credit,) = report.windows
    assert (credit.used, credit.limit) == (150, 550)
    assert credit.remaining_pct == pytest.approx(400 / 550 * 100)
    assert not credit.exhausted
    fake.exhaust("kr-tok-3", "CREDIT")
    report = await kiro_quota.fetch(ctx_for(fake, http, "kiro"), auth_file("kiro", "kr-tok-3"))
    assert report.windows[0].exhausted


def test_kiro_plain_counts_top_level_reset_and_other_resources() -> None:
    report = kiro_quota.parse(
        {
            "nextDateReset": 1.9e9,
            "subscriptionInfo": {"type": "Q_DEVELOPER_STANDALONE_PRO"},
            "usageBreakdownList": [
                {"resourceType": "AGENTIC_REQUEST", "currentUsage": 10, "usageLimit": 1000,
                 "freeTrialInfo": {"freeTrialStatus": "EXPIRED", "currentUsage": 5, "usageLimit": 100}},
                {"resourceType": "SPEC_REQUEST", "usageLimit": 0},
            ],
        }
    )
    agentic, spec = report.windows
    assert (agentic.name, agentic.used, agentic.limit, agentic.remaining_pct, agentic.unit) == (
        "agentic_request", 10, 1000, 99.0, "requests"
    )
    assert agentic.resets_at == 1.9e9
    assert spec.remaining_pct is None and not spec.exhausted
    assert report.plan == "Q_DEVELOPER_STANDALONE_PRO"


async def test_kiro_bad_token_is_forbidden(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    report = await kiro_quota.fetch(ctx_for(fake, http, "kiro"), auth_file("kiro", "kr-unknown"))
    assert report.status == "forbidden" and report.error == "Kiro usage: HTTP 403"


# --- what every fetcher shares --------------------------------------------------------

TOKENS = {
    "claude": "sk-ant-oat01-shared-secret",
    "codex": "codex-shared-secret",
    "gemini": "ya29.gemini-shared-secret",
    "github-copilot": "gho_shared_secret",
    "kiro": "aoa-kiro-shared-secret",
}


def shared_cred(provider: str) -> Credential:
    token = TOKENS[provider]
    extra = {"project_id": "fake-project-123"} if provider == "gemini" else {}
    return auth_file(provider, token, **extra)


@pytest.fixture
def shared(fake: FakeQuota) -> Iterator[FakeQuota]:
    for provider, token in TOKENS.items():
        fake.add(provider, token)
    yield fake
    for token in TOKENS.values():
        fake.fail(token, None)


@pytest.mark.parametrize("provider", FETCHERS)
@pytest.mark.parametrize("status", [401, 403])
async def test_refused_is_forbidden(shared: FakeQuota, http: httpx.AsyncClient, provider: str, status: int) -> None:
    shared.fail(TOKENS[provider], status, times=1)
    report = await FETCHERS[provider].fetch(ctx_for(shared, http, provider), shared_cred(provider))
    assert report.status == "forbidden"
    assert report.error.endswith(f"HTTP {status}")
    assert TOKENS[provider] not in report.error
    assert report.windows == ()


@pytest.mark.parametrize("provider", FETCHERS)
@pytest.mark.parametrize("status", [429, 500, 503])
async def test_other_http_errors_are_errors(shared: FakeQuota, http: httpx.AsyncClient, provider: str, status: int) -> None:
    shared.fail(TOKENS[provider], status, times=1)
    report = await FETCHERS[provider].fetch(ctx_for(shared, http, provider), shared_cred(provider))
    assert report.status == "error"
    assert report.error.endswith(f"HTTP {status}") and TOKENS[provider] not in report.error
    # The failure was counted once: the next call is answered.
    again = await FETCHERS[provider].fetch(ctx_for(shared, http, provider), shared_cred(provider))
    assert again.status == "ok" and again.windows


@pytest.mark.parametrize("provider", FETCHERS)
@pytest.mark.parametrize(("body", "why"), [("<html>gateway</html>", "not JSON"), ([1, 2], "unexpected shape")])
async def test_unparsable_answers_are_errors(
    shared: FakeQuota, http: httpx.AsyncClient, provider: str, body: Any, why: str
) -> None:
    shared.fail(TOKENS[provider], 200, body=body, times=1)
    report = await FETCHERS[provider].fetch(ctx_for(shared, http, provider), shared_cred(provider))
    assert report.status == "error" and why in report.error
    assert TOKENS[provider] not in report.error


@pytest.mark.parametrize("provider", FETCHERS)
async def test_transport_errors_are_errors(http: httpx.AsyncClient, provider: str) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    urls = {name: f"{dead}/x" for name in merge_upstreams(None)[provider]}
    report = await FETCHERS[provider].fetch(QuotaContext(urls=urls, http=http), shared_cred(provider))
    assert report.status == "error"
    assert report.error.endswith("ConnectError") and TOKENS[provider] not in report.error


@pytest.mark.parametrize("provider", ["claude", "codex", "gemini", "kiro"])
async def test_unknown_token_is_forbidden(fake: FakeQuota, http: httpx.AsyncClient, provider: str) -> None:
    cred = auth_file(provider, f"never-issued-{provider}", project_id="fake-project-123")
    report = await FETCHERS[provider].fetch(ctx_for(fake, http, provider), cred)
    assert report.status == "forbidden"


@pytest.mark.parametrize("provider", ["claude", "codex", "gemini"])
async def test_api_keys_ask_nothing(fake: FakeQuota, http: httpx.AsyncClient, provider: str) -> None:
    before = len(fake.requests)
    report = await FETCHERS[provider].fetch(ctx_for(fake, http, provider), api_key(provider, "key-x"))
    assert report.status == "unsupported" and report.windows == ()
    assert len(fake.requests) == before


def test_timestamps() -> None:
    assert timestamp("2030-01-01T00:00:00Z") == 1893456000.0
    assert timestamp("2030-01-01") == 1893456000.0
    assert timestamp("2030-01-01T01:00:00+01:00") == 1893456000.0
    assert timestamp(1893456000) == 1893456000.0
    assert timestamp(1893456000123) == pytest.approx(1893456000.123)
    assert timestamp("1893456000") == 1893456000.0
    for nothing in (None, "", "soon", 0, -5, True, float("nan"), {}):
        assert timestamp(nothing) is None


# --- the fake refuses what the real endpoints refuse ----------------------------------


async def test_fake_refuses_malformed_requests(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("kiro", "kr-strict")
    fake.add("github-copilot", "gho_strict")
    fake.add("gemini", "ge-strict", project="proj-s")
    up = merge_upstreams(fake.upstreams)

    resp = await http.get(up["kiro"]["usage-url"], headers={"authorization": "Bearer kr-strict"})
    assert resp.status_code == 400 and resp.json()["__type"] == "ValidationException"

    copilot = {"accept": "application/vnd.github+json", "x-github-api-version": "2022-11-28"}
    resp = await http.get(up["github-copilot"]["quota-url"], headers={**copilot, "authorization": "Bearer gho_strict"})
    assert resp.status_code == 401 and resp.json()["message"]
    resp = await http.get(
        up["github-copilot"]["quota-url"], headers={**copilot, "authorization": "token gho_strict", "user-agent": ""}
    )
    assert resp.status_code == 403

    resp = await http.post(up["gemini"]["quota-url"], headers={"authorization": "Bearer ge-strict"}, json={})
    assert resp.status_code == 400 and resp.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert len(fake.errors) >= 4


async def test_fake_failure_lasts_until_cleared(fake: FakeQuota, http: httpx.AsyncClient) -> None:
    fake.add("claude", "cl-sticky")
    ctx, cred = ctx_for(fake, http, "claude"), auth_file("claude", "cl-sticky")
    fake.fail("cl-sticky", 403)
    assert [(await claude_quota.fetch(ctx, cred)).status for _ in range(2)] == ["forbidden", "forbidden"]
    assert fake.last.headers["authorization"] == "Bearer cl-sticky"
    fake.fail("cl-sticky", None)
    assert (await claude_quota.fetch(ctx, cred)).status == "ok"
