"""Keeps every logged-in credential's token usable: refresh ahead, on expiry and on 401.

One refresh per credential at a time: concurrent callers share the running
refresh (an asyncio future), so a burst of requests on an expired token
refreshes it once. New tokens go back to the auth file atomically; a refresh
answer without a refresh token keeps the old one. A refused grant marks the
file `needs_login` (so it leaves the pool and says why in listings) instead
of deleting anything.

Short-lived tokens derived from a file (Copilot's exchanged token, Vertex's
signed-JWT token) are kept in memory only, renewed a minute before expiry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from ...pool.authstore import AuthStore
from ...config import Config
from .. import login_module
from .base import Bearer, InvalidGrant, LoginContext, LoginError, logged_in, now_rfc3339

if TYPE_CHECKING:
    from ...pool.credentials import Credential

__all__ = ["RefreshFailed", "TokenKeeper"]

log = logging.getLogger(__name__)

# Renew a token this long before it expires even without a provider lead,
# so a request never leaves with a token that dies in flight.
EXPIRY_MARGIN = timedelta(seconds=60)


class RefreshFailed(Exception):
    """The credential cannot get a usable token now; `needs_login` says whether ever."""

    def __init__(self, cred_id: str, message: str, needs_login: bool):
        super().__init__(f"{cred_id}: {message}")
        self.cred_id = cred_id
        self.needs_login = needs_login


class TokenKeeper:
    def __init__(
        self,
        config: Config,
        store: AuthStore,
        on_change: Callable[[], None] = lambda: None,
        *,
        retry_seconds: float = 300.0,
    ):
        self.config = config
        self.store = store
        self._on_change = on_change
        self.retry_seconds = retry_seconds
        self._inflight: dict[str, asyncio.Future[Credential]] = {}
        self._bearers: dict[str, Bearer] = {}
        self._bearer_inflight: dict[str, asyncio.Future[Bearer]] = {}
        self._failed_at: dict[str, float] = {}
        self._http: httpx.AsyncClient | None = None
        self.refreshes = 0  # completed refreshes, for tests and metrics

    # --- context ------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False, timeout=30.0)
        return self._http

    def context(self, provider: str, **options: Any) -> LoginContext:
        # Client-identity header versions drift; the configured ones apply to token calls too.
        options = {"header_defaults": self.config.headers_for(provider), **options}
        return LoginContext(urls=self.config.upstreams.get(provider, {}), http=self._client(), options=options)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- what needs doing ------------------------------------------------------
    @staticmethod
    def refreshable(cred: Credential) -> bool:
        module = login_module(cred.provider)
        return (
            cred.source == "file"
            and cred.kind == "oauth"
            and module is not None
            and hasattr(module, "refresh")
            and not cred.data.get("needs_login")
        )

    def lead(self, cred: Credential) -> timedelta | None:
        override = cred.data.get("refresh_interval_seconds")
        if isinstance(override, (int, float)) and override > 0:
            return timedelta(seconds=override)
        module = login_module(cred.provider)
        return getattr(module, "REFRESH_LEAD", None)

    def due(self, cred: Credential, now: float | None = None) -> bool:
        """Whether the background refresher should renew this credential now."""
        now = time.time() if now is None else now
        if not self.refreshable(cred) or cred.expires_at is None:
            return False
        if now - self._failed_at.get(cred.id, -1e18) < self.retry_seconds:
            return False  # a failed refresh backs off before it is tried again
        lead = max(self.lead(cred) or timedelta(0), EXPIRY_MARGIN)
        return cred.expires_at - lead <= datetime.fromtimestamp(now, UTC)

    def _expiring(self, cred: Credential) -> bool:
        return cred.expires_at is not None and cred.expires_at - EXPIRY_MARGIN <= datetime.now(UTC)

    # --- the request path ------------------------------------------------------
    async def ensure(self, cred: Credential) -> Credential:
        """`cred` with a token fit to send now (refreshed or exchanged if needed).

        Raises RefreshFailed when it has none; the caller picks another credential.
        """
        if cred.source != "file":
            return cred
        module = login_module(cred.provider)
        if module is None:
            return cred
        if self._expiring(cred) and self.refreshable(cred):
            cred = await self.refresh(cred)
        if hasattr(module, "bearer"):
            bearer = await self.bearer(cred)
            return replace(cred, secret=bearer.token, data={**cred.data, **bearer.extra})
        return cred

    async def bearer(self, cred: Credential) -> Bearer:
        cached = self._bearers.get(cred.id)
        if cached is not None and cached.expires_at - EXPIRY_MARGIN.total_seconds() > time.time():
            return cached
        if (running := self._bearer_inflight.get(cred.id)) is not None:
            return await asyncio.shield(running)
        fut = asyncio.get_running_loop().create_future()
        self._bearer_inflight[cred.id] = fut
        try:
            bearer = await login_module(cred.provider).bearer(self.context(cred.provider), dict(cred.data))
        except InvalidGrant as e:
            await self._mark_needs_login(cred, str(e))
            err = RefreshFailed(cred.id, str(e), True)
            fut.set_exception(err)
            raise err from e
        except (LoginError, httpx.HTTPError) as e:
            err = RefreshFailed(cred.id, str(e) or type(e).__name__, False)
            fut.set_exception(err)
            raise err from e
        else:
            self._bearers[cred.id] = bearer
            fut.set_result(bearer)
            return bearer
        finally:
            del self._bearer_inflight[cred.id]
            if fut.done() and not fut.cancelled():
                fut.exception()  # retrieved: no "never retrieved" warning when nobody waited

    def invalidate(self, cred_id: str) -> None:
        """Forget a derived token the upstream refused, so the next use gets a new one."""
        self._bearers.pop(cred_id, None)

    def has_bearer(self, cred: Credential) -> bool:
        return hasattr(login_module(cred.provider), "bearer")

    async def recover(self, cred: Credential) -> Credential:
        """After a 401 for a request sent with `cred`: a fresh token (refresh or new derived token).

        If the token was already renewed since that request left (another
        request's 401 got there first), the renewed one is used as it is.
        """
        current = self.store.get(cred.id) or cred
        if self.has_bearer(current):
            cached = self._bearers.get(cred.id)
            if cached is not None and cached.token != cred.secret:
                return await self.ensure(current)
            self.invalidate(cred.id)
        elif current.secret != cred.secret and not current.needs_login:
            return await self.ensure(current)
        if self.refreshable(current) and not self.has_bearer(current):
            current = await self.refresh(current, force=True)
        elif not self.has_bearer(current):
            raise RefreshFailed(cred.id, "the token was refused and cannot be refreshed", False)
        return await self.ensure(current)

    # --- refreshing -------------------------------------------------------------
    async def refresh(self, cred: Credential, force: bool = False) -> Credential:
        """Refresh `cred` once, however many callers ask at the same time."""
        if (running := self._inflight.get(cred.id)) is not None:
            return await asyncio.shield(running)
        current = self.store.get(cred.id) or cred
        # Someone refreshed it since this caller looked: use that.
        if not force and current.secret != cred.secret and not self._expiring(current):
            return current
        fut = asyncio.get_running_loop().create_future()
        self._inflight[cred.id] = fut
        try:
            fresh = await self._refresh(current)
        except BaseException as e:
            fut.set_exception(e)
            raise
        else:
            fut.set_result(fresh)
            return fresh
        finally:
            del self._inflight[cred.id]
            if fut.done() and not fut.cancelled():
                fut.exception()

    async def _refresh(self, cred: Credential) -> Credential:
        module = login_module(cred.provider)
        try:
            data = await asyncio.to_thread(self._read, cred.id)
            new = await module.refresh(self.context(cred.provider), data)
        except InvalidGrant as e:
            self._failed_at[cred.id] = time.time()
            await self._mark_needs_login(cred, str(e))
            raise RefreshFailed(cred.id, str(e), True) from e
        except (LoginError, httpx.HTTPError, OSError, ValueError) as e:
            self._failed_at[cred.id] = time.time()
            log.warning("quotio: refreshing %s failed: %s", cred.id, e)
            raise RefreshFailed(cred.id, str(e) or type(e).__name__, False) from e
        new = logged_in(new)
        new.setdefault("last_refresh", now_rfc3339())
        await asyncio.to_thread(self.store.write, cred.id, new)
        self._failed_at.pop(cred.id, None)
        self.invalidate(cred.id)
        self.refreshes += 1
        self._on_change()
        log.info("quotio: refreshed %s", cred.id)
        return self.store.get(cred.id) or cred

    def _read(self, name: str) -> dict[str, Any]:
        data = json.loads((self.store.dir / name).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{name} is not a JSON object")  # noqa: TRY004 (a bad file, not a bad call)
        return data

    async def _mark_needs_login(self, cred: Credential, reason: str) -> None:
        """Take the credential out of the pool, in its file, so a restart remembers."""
        log.warning("quotio: %s needs a new login: %s", cred.id, reason)
        try:
            data = await asyncio.to_thread(self._read, cred.id)
            data.update({"needs_login": True, "last_error": reason[:300]})
            await asyncio.to_thread(self.store.write, cred.id, data)
        except (OSError, ValueError) as e:
            log.warning("quotio: cannot mark %s as needing login: %s", cred.id, e)
        self._on_change()

    async def refresh_due(self, concurrency: int = 4) -> list[str]:
        """Refresh every credential whose token is within its lead; returns their ids."""
        due = [c for c in self.store.credentials if self.due(c)]
        sem = asyncio.Semaphore(concurrency)

        async def one(cred: Credential) -> str | None:
            async with sem:
                try:
                    await self.refresh(cred)
                except RefreshFailed:
                    return None
                return cred.id

        done = await asyncio.gather(*(one(c) for c in due))
        return [d for d in done if d]
