"""A fake of every provider's quota endpoint, answering in the providers' published shapes.

`FakeQuota` is one real HTTP/1.1 server on 127.0.0.1 (ephemeral port, a
ThreadingHTTPServer in a thread) serving

* GET  /api/oauth/usage                 Claude: `five_hour`, `seven_day`, … each
  `{utilization, resets_at}` (RFC 3339), the others null, `extra_usage`.
  Needs `Authorization: Bearer <token>` and `anthropic-beta` naming
  `oauth-2025-04-20` (without it Anthropic refuses OAuth tokens: 401).
* GET  /backend-api/wham/usage          Codex: `plan_type`, `rate_limit{allowed,
  limit_reached, primary_window, secondary_window}` with `{used_percent,
  limit_window_seconds, reset_after_seconds, reset_at}`, `credits`. Needs
  Bearer; an account with an `account_id` also needs `ChatGPT-Account-Id`
  equal to it (else 403 `{"detail": …}`).
* POST /v1internal:retrieveUserQuota    Gemini Code Assist: `{buckets: [{modelId,
  tokenType, remainingFraction, resetTime}]}`. Needs Bearer, a JSON body
  with `project` (400 INVALID_ARGUMENT without) equal to the account's
  project (403 PERMISSION_DENIED otherwise), in Google's error shape.
* GET  /copilot_internal/user           GitHub Copilot: `quota_snapshots{<bucket>:
  {entitlement, remaining, percent_remaining, unlimited, overage_count,
  overage_permitted, quota_id, quota_remaining, timestamp_utc}}`,
  `quota_reset_date`, `quota_reset_date_utc`, `copilot_plan`; or, for an
  account added with `free_shape=True`, `monthly_quotas` /
  `limited_user_quotas` / `limited_user_reset_date`. Needs exactly
  `Authorization: token <GitHub token>`, `Accept:
  application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28` (400
  otherwise) and a User-Agent (403 otherwise, like GitHub).
* GET  /getUsageLimits                   Kiro: `usageBreakdownList[{resourceType,
  displayName, currentUsage(WithPrecision), usageLimit(WithPrecision),
  nextDateReset, freeTrialInfo?}]`, `nextDateReset`, `subscriptionInfo`,
  `userInfo`. Needs Bearer and `origin=AI_EDITOR&isEmailRequired=true`
  (400 ValidationException otherwise) and, for an account with a profile
  ARN, `profileArn` equal to it (403 AccessDeniedException otherwise).

A token the fake does not know, or one registered for another provider, is
refused in that route's shape: 401, except Kiro's 403 (AWS's answer to a bad
bearer token).

Programming it (all thread-safe, changeable while it runs):

* `add(provider, token, **options) -> FakeAccount` registers an account. By
  default: Claude `five_hour` + `seven_day`; Codex `primary` (5 h) +
  `secondary` (7 d), plan "plus"; Gemini buckets `gemini-2.5-pro` +
  `gemini-2.5-flash`, project "fake-project-123"; Copilot unlimited `chat`
  and `completions` and 300 `premium_interactions`, plan "individual";
  Kiro `CREDIT` 50, plan "KIRO FREE". Options: `windows` (name ->
  `FakeWindow`), `plan`, `account_id` (Codex), `project` (Gemini),
  `profile_arn` (Kiro), `free_shape` (Copilot), `email`.
* `FakeWindow.used` is a percentage for Claude, Codex and Gemini and a
  count against `limit` for Copilot and Kiro; `resets_at` is unix seconds;
  `window_seconds` is Codex's window length; `unlimited` is Copilot's flag;
  `trial` is Kiro's active free trial `(used, limit, expires_at)`. Copilot
  answers one reset date for the account: its first window's.
* `set_used(token, window, used, resets_in=None)`, `exhaust(token,
  window=None, resets_in=None)` (used up; the first window by default; a
  Kiro trial too; Codex then says `limit_reached`).
* `fail(token, status, body=None, times=None)`: answer `status` (401, 403,
  500, … in the provider's error shape, or `body` as given: a str is sent
  raw, e.g. "not json" with 200) for this token, `times` times or until
  `fail(token, None)`.

Inspecting it: `requests` (every `Captured` request, refused ones too),
`last`, `errors` (why requests were refused), `clear()`; `url`; and
`upstreams`, the `upstreams.<provider>` overrides pointing each provider's
quota URL here (Claude/Codex/Kiro `usage-url`, Gemini/Copilot `quota-url`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.served import Served
from tests.fakes.upstreams import Captured

HOUR = 3600
DAY = 24 * HOUR
PERCENT_PROVIDERS = ("claude", "codex", "gemini")
ROUTES = {
    ("GET", "/api/oauth/usage"): "claude",
    ("GET", "/backend-api/wham/usage"): "codex",
    ("POST", "/v1internal:retrieveUserQuota"): "gemini",
    ("GET", "/copilot_internal/user"): "github-copilot",
    ("GET", "/getUsageLimits"): "kiro",
}
GITHUB_API_VERSION = "2022-11-28"


@dataclass
class FakeWindow:
    used: float = 0.0
    limit: float | None = None
    resets_at: float | None = None
    window_seconds: int | None = None
    unlimited: bool = False
    trial: tuple[float, float, float] | None = None


@dataclass
class FakeAccount:
    provider: str
    token: str
    windows: dict[str, FakeWindow]
    plan: str | None = None
    account_id: str | None = None
    project: str | None = None
    profile_arn: str | None = None
    free_shape: bool = False
    email: str = "quota-user@example.com"
    limit_reached: bool = False


@dataclass
class _Forced:
    status: int
    body: Any
    remaining: int | None


def _defaults(provider: str, now: float) -> tuple[dict[str, FakeWindow], str | None]:
    if provider == "claude":
        return {"five_hour": FakeWindow(resets_at=now + 5 * HOUR), "seven_day": FakeWindow(resets_at=now + 7 * DAY)}, None
    if provider == "codex":
        return {
            "primary": FakeWindow(resets_at=now + 5 * HOUR, window_seconds=5 * HOUR),
            "secondary": FakeWindow(resets_at=now + 7 * DAY, window_seconds=7 * DAY),
        }, "plus"
    if provider == "gemini":
        return {
            "gemini-2.5-pro": FakeWindow(resets_at=now + DAY),
            "gemini-2.5-flash": FakeWindow(resets_at=now + DAY),
        }, None
    if provider == "github-copilot":
        month = now + 30 * DAY
        return {
            "chat": FakeWindow(unlimited=True, resets_at=month),
            "completions": FakeWindow(unlimited=True, resets_at=month),
            "premium_interactions": FakeWindow(limit=300, resets_at=month),
        }, "individual"
    if provider == "kiro":
        return {"CREDIT": FakeWindow(limit=50, resets_at=now + 30 * DAY)}, "KIRO FREE"
    raise ValueError(f"unknown provider {provider!r}")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _zulu(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


class FakeQuota(Served):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, FakeAccount] = {}
        self._forced: dict[str, _Forced] = {}
        self._requests: list[Captured] = []
        self.errors: list[str] = []

    @property
    def upstreams(self) -> dict[str, dict[str, str]]:
        return {
            "claude": {"usage-url": f"{self.url}/api/oauth/usage"},
            "codex": {"usage-url": f"{self.url}/backend-api/wham/usage"},
            "gemini": {"quota-url": f"{self.url}/v1internal:retrieveUserQuota"},
            "github-copilot": {"quota-url": f"{self.url}/copilot_internal/user"},
            "kiro": {"usage-url": f"{self.url}/getUsageLimits"},
        }

    # --- programming ---------------------------------------------------------
    def add(
        self,
        provider: str,
        token: str,
        *,
        windows: dict[str, FakeWindow] | None = None,
        plan: str | None = None,
        account_id: str | None = None,
        project: str | None = None,
        profile_arn: str | None = None,
        free_shape: bool = False,
        email: str = "quota-user@example.com",
    ) -> FakeAccount:
        default_windows, default_plan = _defaults(provider, time.time())
        account = FakeAccount(
            provider,
            token,
            dict(windows) if windows is not None else default_windows,
            plan=plan if plan is not None else default_plan,
            account_id=account_id,
            project=project if project is not None or provider != "gemini" else "fake-project-123",
            profile_arn=profile_arn,
            free_shape=free_shape,
            email=email,
        )
        with self._lock:
            self._accounts[token] = account
        return account

    def account(self, token: str) -> FakeAccount:
        with self._lock:
            return self._accounts[token]

    def set_used(self, token: str, window: str, used: float, *, resets_in: float | None = None) -> None:
        with self._lock:
            acc = self._accounts[token]
            w = acc.windows[window]
            resets_at = w.resets_at if resets_in is None else time.time() + resets_in
            acc.windows[window] = replace(w, used=used, resets_at=resets_at)
            if used < self._full(acc, w):
                acc.limit_reached = False

    def exhaust(self, token: str, window: str | None = None, *, resets_in: float | None = None) -> None:
        with self._lock:
            acc = self._accounts[token]
            name = window if window is not None else next(iter(acc.windows))
            w = acc.windows[name]
            if w.unlimited:
                raise ValueError(f"{name} is unlimited; give it a limit first")
            trial = w.trial and (w.trial[1], w.trial[1], w.trial[2])
            resets_at = w.resets_at if resets_in is None else time.time() + resets_in
            acc.windows[name] = replace(w, used=self._full(acc, w), resets_at=resets_at, trial=trial)
            acc.limit_reached = True

    @staticmethod
    def _full(acc: FakeAccount, w: FakeWindow) -> float:
        return 100.0 if acc.provider in PERCENT_PROVIDERS else float(w.limit or 0)

    def fail(self, token: str, status: int | None, *, body: Any = None, times: int | None = None) -> None:
        with self._lock:
            if status is None:
                self._forced.pop(token, None)
            else:
                self._forced[token] = _Forced(status, body, times)

    # --- inspection ----------------------------------------------------------
    @property
    def requests(self) -> list[Captured]:
        with self._lock:
            return list(self._requests)

    @property
    def last(self) -> Captured:
        with self._lock:
            return self._requests[-1]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self.errors.clear()

    # --- answering -----------------------------------------------------------
    def handle(self, req: Captured) -> tuple[int, Any]:
        with self._lock:
            self._requests.append(req)
            provider = ROUTES.get((req.method, req.path))
            if provider is None:
                return 404, {"error": f"no route {req.method} {req.path}"}
            token = _token(provider, req.headers)
            acc = self._accounts.get(token) if token else None
            if acc is None or acc.provider != provider:
                return self._refuse(provider, 403 if provider == "kiro" else 401, "unknown token")
            if (why := _check(provider, acc, req)) is not None:
                return self._refuse(provider, why[0], why[1])
            forced = self._forced.get(token)
            if forced is not None:
                if forced.remaining is not None:
                    forced.remaining -= 1
                    if forced.remaining <= 0:
                        del self._forced[token]
                if forced.body is not None:
                    return forced.status, forced.body
                if forced.status >= 400:
                    return forced.status, _error(provider, forced.status, "forced failure")
            return 200, _render(acc, time.time())

    def _refuse(self, provider: str, status: int, why: str) -> tuple[int, Any]:
        self.errors.append(f"{provider}: {why}")
        return status, _error(provider, status, why)


def _token(provider: str, headers: dict[str, str]) -> str:
    auth = headers.get("authorization", "")
    scheme = "token " if provider == "github-copilot" else "bearer "
    return auth[len(scheme):] if auth.lower().startswith(scheme) else ""


def _check(provider: str, acc: FakeAccount, req: Captured) -> tuple[int, str] | None:
    """(status, why) when the request is not what the real endpoint accepts."""
    h = req.headers
    if provider == "claude" and "oauth-2025-04-20" not in h.get("anthropic-beta", ""):
        return 401, "OAuth tokens need anthropic-beta oauth-2025-04-20"
    if provider == "codex" and acc.account_id is not None and h.get("chatgpt-account-id") != acc.account_id:
        return 403, "ChatGPT-Account-Id does not match the token's account"
    if provider == "gemini":
        if not h.get("content-type", "").startswith("application/json") or not isinstance(req.json, dict):
            return 400, "the body must be a JSON object"
        if not req.json.get("project"):
            return 400, "project is required"
        if req.json["project"] != acc.project:
            return 403, f"no access to project {req.json['project']!r}"
    if provider == "github-copilot":
        if not h.get("user-agent"):
            return 403, "a User-Agent header is required"
        if h.get("accept") != "application/vnd.github+json":
            return 400, f"Accept must be application/vnd.github+json, got {h.get('accept')!r}"
        if h.get("x-github-api-version") != GITHUB_API_VERSION:
            return 400, f"X-GitHub-Api-Version must be {GITHUB_API_VERSION}"
    if provider == "kiro":
        if req.query.get("origin") != "AI_EDITOR" or req.query.get("isEmailRequired") != "true":
            return 400, "origin=AI_EDITOR and isEmailRequired=true are required"
        if acc.profile_arn is not None and req.query.get("profileArn") != acc.profile_arn:
            return 403, "profileArn does not match the token's profile"
    return None


def _error(provider: str, status: int, message: str) -> Any:
    if provider == "claude":
        kind = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    if provider == "codex":
        return {"detail": message}
    if provider == "gemini":
        google = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}
        return {"error": {"code": status, "message": message, "status": google.get(status, "INTERNAL")}}
    if provider == "github-copilot":
        return {"message": message, "documentation_url": "https://docs.github.com/rest", "status": str(status)}
    aws = {400: "ValidationException", 401: "UnauthorizedException", 403: "AccessDeniedException", 429: "ThrottlingException"}
    return {"__type": aws.get(status, "InternalServerException"), "message": message}


def _render(acc: FakeAccount, now: float) -> dict[str, Any]:
    return {
        "claude": _claude,
        "codex": _codex,
        "gemini": _gemini,
        "github-copilot": _copilot,
        "kiro": _kiro,
    }[acc.provider](acc, now)


def _claude(acc: FakeAccount, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        name: None for name in ("five_hour", "seven_day", "seven_day_oauth_apps", "seven_day_opus", "seven_day_sonnet")
    }
    for name, w in acc.windows.items():
        out[name] = {"utilization": _num(w.used), "resets_at": _iso(w.resets_at)}
    out["extra_usage"] = {"is_enabled": False, "monthly_limit": None, "used_credits": None, "utilization": None}
    return out


def _codex(acc: FakeAccount, now: float) -> dict[str, Any]:
    def window(w: FakeWindow | None) -> dict[str, Any] | None:
        if w is None:
            return None
        reset_at = int(w.resets_at) if w.resets_at is not None else int(now)
        return {
            "used_percent": _num(w.used),
            "limit_window_seconds": w.window_seconds or 0,
            "reset_after_seconds": max(0, reset_at - int(now)),
            "reset_at": reset_at,
        }

    reached = acc.limit_reached or any(w.used >= 100 for w in acc.windows.values())
    return {
        "plan_type": acc.plan,
        "rate_limit": {
            "allowed": not reached,
            "limit_reached": reached,
            "primary_window": window(acc.windows.get("primary")),
            "secondary_window": window(acc.windows.get("secondary")),
        },
        "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
    }


def _gemini(acc: FakeAccount, now: float) -> dict[str, Any]:
    buckets = []
    for model, w in acc.windows.items():
        bucket: dict[str, Any] = {
            "modelId": model,
            "tokenType": "REQUESTS",
            "remainingFraction": max(0.0, 100.0 - w.used) / 100.0,
        }
        if w.resets_at is not None:
            bucket["resetTime"] = _zulu(w.resets_at)
        buckets.append(bucket)
    return {"buckets": buckets}


def _copilot(acc: FakeAccount, now: float) -> dict[str, Any]:
    reset = next(iter(acc.windows.values())).resets_at if acc.windows else None
    reset_date = datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%d") if reset is not None else None
    out: dict[str, Any] = {
        "login": acc.email.split("@")[0],
        "access_type_sku": "free_limited_copilot" if acc.free_shape else "plus_monthly_subscriber_quota",
        "copilot_plan": acc.plan,
        "chat_enabled": True,
        "assigned_date": "2025-01-01T00:00:00+00:00",
        "organization_list": [],
        "organization_login_list": [],
    }
    if acc.free_shape:
        out["monthly_quotas"] = {name: _num(w.limit or 0) for name, w in acc.windows.items()}
        out["limited_user_quotas"] = {
            name: _num(max(0.0, (w.limit or 0) - w.used)) for name, w in acc.windows.items()
        }
        out["limited_user_reset_date"] = reset_date
        return out
    snapshots = {}
    for name, w in acc.windows.items():
        if w.unlimited:
            snapshots[name] = {
                "entitlement": 0, "remaining": 0, "percent_remaining": 100.0, "unlimited": True,
                "overage_count": 0, "overage_permitted": False, "quota_id": name, "quota_remaining": 0.0,
                "timestamp_utc": _zulu(now),
            }
            continue
        limit = float(w.limit or 0)
        remaining = max(0.0, limit - w.used)
        snapshots[name] = {
            "entitlement": _num(limit),
            "remaining": _num(remaining),
            "percent_remaining": remaining / limit * 100.0 if limit else 0.0,
            "unlimited": False,
            "overage_count": 0,
            "overage_permitted": False,
            "quota_id": name,
            "quota_remaining": remaining,
            "timestamp_utc": _zulu(now),
        }
    out["quota_snapshots"] = snapshots
    out["quota_reset_date"] = reset_date
    out["quota_reset_date_utc"] = _iso(reset).replace("+00:00", ".000Z") if reset is not None else None
    return out


def _kiro(acc: FakeAccount, now: float) -> dict[str, Any]:
    entries = []
    first_reset = None
    for resource, w in acc.windows.items():
        limit = float(w.limit or 0)
        entry: dict[str, Any] = {
            "resourceType": resource,
            "displayName": resource.replace("_", " ").title(),
            "unit": "INVOCATIONS",
            "currency": "USD",
            "currentUsage": int(w.used),
            "currentUsageWithPrecision": w.used,
            "usageLimit": int(limit),
            "usageLimitWithPrecision": limit,
            "currentOverages": 0,
            "overageCap": 0,
            "overageRate": 0.04,
            "nextDateReset": int(w.resets_at) if w.resets_at is not None else None,
        }
        if w.trial is not None:
            used, trial_limit, expires = w.trial
            entry["freeTrialInfo"] = {
                "freeTrialStatus": "ACTIVE",
                "currentUsage": int(used),
                "currentUsageWithPrecision": used,
                "usageLimit": int(trial_limit),
                "usageLimitWithPrecision": trial_limit,
                "freeTrialExpiry": int(expires),
            }
        first_reset = first_reset or entry["nextDateReset"]
        entries.append(entry)
    return {
        "daysUntilReset": 30,
        "nextDateReset": first_reset,
        "subscriptionInfo": {"subscriptionTitle": acc.plan, "type": "Q_DEVELOPER_STANDALONE_FREE"},
        "userInfo": {"email": acc.email, "userId": "user-" + acc.token[-6:]},
        "overageConfiguration": {"overageStatus": "DISABLED"},
        "usageBreakdownList": entries,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def server_fake(self) -> FakeQuota:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        req = Captured.parse(method, self.path, self.headers.items(), raw)
        status, body = self.server_fake.handle(req)
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


FakeQuota.HANDLER = _Handler
