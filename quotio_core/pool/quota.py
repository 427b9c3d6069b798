"""Per-account quota: what each subscription has left, fetched from the provider.

One fetcher per provider lives beside that provider's executor
(``providers/<provider>/quota.py``, see ``providers/quotas.py``) with

* ``PROVIDER``
* ``async fetch(ctx: QuotaContext, cred: Credential) -> QuotaReport``

A fetcher maps the provider's own answer onto :class:`Window` rows and says
``forbidden`` for a 401/403 rather than inventing numbers. A provider with
no fetcher is reported as ``unsupported``.

The :class:`QuotaBook` keeps the last report per credential, refreshes them
on a schedule and on demand, and turns an exhausted window into an
account-wide cooldown until the window resets, so the pool stops picking the
account before a client ever sees its 429; a later report with room in every
window lifts that cooldown at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from types import ModuleType

import httpx

from .. import providers
from ..providers import QuotaContext, QuotaReport, Window
from ..config import Config
from .cooldown import CooldownBook, Decision
from .credentials import Credential

__all__ = ["QuotaBook", "fetcher_for"]

log = logging.getLogger(__name__)


# The reason a quota cooldown carries, so a later report can lift exactly those.
QUOTA_REASON = "quota window exhausted"


def fetcher_for(provider: str) -> ModuleType | None:
    return providers.quota_fetcher(provider)


# When an exhausted window names no reset time, look again after this long.
UNKNOWN_RESET_SECONDS = 300.0


class QuotaBook:
    """The latest quota report per credential, and what it means for the pool."""

    def __init__(
        self,
        config: Config,
        credentials: Callable[[], Iterable[Credential]],
        ensure: Callable[[Credential], Awaitable[Credential]],
        cooldowns: CooldownBook,
        *,
        interval: float = 300.0,
        clock: Callable[[], float] = time.time,
    ):
        self.config = config
        self._credentials = credentials
        self._ensure = ensure
        self.cooldowns = cooldowns
        self.interval = interval
        self._clock = clock
        self.reports: dict[str, QuotaReport] = {}
        self._inflight: dict[str, asyncio.Task[QuotaReport]] = {}
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False, timeout=20.0)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def get(self, cred_id: str) -> QuotaReport | None:
        return self.reports.get(cred_id)

    def stale(self, cred: Credential) -> bool:
        report = self.reports.get(cred.id)
        return report is None or self._clock() - report.fetched_at >= self.interval

    async def refresh(self, force: bool = False, provider: str | None = None) -> dict[str, QuotaReport]:
        """Fetch every credential's report that is stale (all with `force`), at most 4 at once."""
        creds = [c for c in self._credentials() if provider in (None, c.provider) and not c.disabled]
        sem = asyncio.Semaphore(4)

        async def one(cred: Credential) -> None:
            if force or self.stale(cred):
                async with sem:
                    await self.fetch(cred)

        await asyncio.gather(*(one(c) for c in creds))
        live = {c.id for c in self._credentials()}
        for gone in [k for k in self.reports if k not in live]:
            del self.reports[gone]
        return {c.id: self.reports[c.id] for c in creds if c.id in self.reports}

    async def fetch(self, cred: Credential) -> QuotaReport:
        """One credential's report, fetched now (concurrent callers share the call)."""
        if (task := self._inflight.get(cred.id)) is not None:
            return await asyncio.shield(task)
        task = asyncio.ensure_future(self._fetch(cred))
        self._inflight[cred.id] = task
        try:
            report = await asyncio.shield(task)
        finally:
            self._inflight.pop(cred.id, None)
        self.reports[cred.id] = report
        self._steer(cred, report)
        return report

    async def _fetch(self, cred: Credential) -> QuotaReport:
        module = fetcher_for(cred.provider)
        if module is None:
            return QuotaReport("unsupported", error=f"{cred.provider} exposes no quota endpoint")
        if cred.needs_login:
            return QuotaReport("forbidden", error="the account needs a new login")
        try:
            ready = await self._ensure(cred)
        except Exception as e:  # noqa: BLE001 (a refresh failure is the account's state, not ours)
            return QuotaReport("forbidden" if getattr(e, "needs_login", False) else "error", error=str(e)[:300])
        ctx = QuotaContext(
            urls=self.config.upstreams.get(cred.provider, {}),
            http=self._client(),
            headers=self.config.headers_for(cred.provider),
        )
        try:
            return await module.fetch(ctx, ready)
        except Exception as e:  # a fetcher bug must not stop the others
            log.exception("quotio: quota fetch for %s failed", cred.id)
            return QuotaReport("error", error=f"quota fetch failed: {type(e).__name__}")

    def _steer(self, cred: Credential, report: QuotaReport) -> None:
        if report.status != "ok":
            return
        now = self._clock()
        by_scope: dict[str, list[Window]] = {}
        for w in report.windows:
            if w.exhausted:
                by_scope.setdefault(w.model or "*", []).append(w)
        if not by_scope:
            self.cooldowns.lift(cred.id, QUOTA_REASON)
            return
        for scope, windows in by_scope.items():
            resets = [w.resets_at for w in windows if w.resets_at]
            # Every exhausted window must have reset before the account is of use again.
            until = max(resets) if resets else now + UNKNOWN_RESET_SECONDS
            names = ", ".join(w.name for w in windows)
            decision = Decision(
                max(until - now, 1.0), "account" if scope == "*" else "model", f"{QUOTA_REASON} ({names})", 429
            )
            self.cooldowns.cool(cred.id, scope, decision)
