"""Moves a failed request to the next healthy credential.

mitmproxy sends a flow's request once, so a retry must happen one of two ways:

- A streaming request from an SDK that retries by itself (it sends
  `x-stainless-retry-count`: the official OpenAI and Anthropic SDKs, Claude
  Code) is answered with the upstream's retryable status plus
  `x-should-retry: true` and `retry-after-ms: 0`. The failed credential is
  already cooling, so the SDK's immediate retry takes the next one through
  mitmproxy's own streaming path.
- Everything else: the gateway sends the next attempt itself (httpx, async)
  and answers the flow with it. A streamed answer then arrives whole.

Every outcome is reported to the pool (cooldowns, breakers) and every attempt
becomes a record row with its attempt number. Connection failures are
reported from the `error` hook; the client gets mitmproxy's 502, which SDKs
retry, and the retry lands on another credential.
"""

from __future__ import annotations

import logging
import time

import httpx
import tenacity
from mitmproxy import http
from mitmproxy.utils import asyncio_utils

from quotio_core import providers
from quotio_core.errors import GatewayError
from quotio_core.gateway import Plan
from quotio_core.images import fetch_images
from quotio_core.oauth.keeper import RefreshFailed
from quotio_core.providers import CLIENT_SECRET_HEADERS
from quotio_core.proxyurl import ProxyURL
from quotio_core.usage import Usage

from . import meta
from .core import GatewayHolder
from .recorder import submit

log = logging.getLogger("quotio")

RETRYABLE = frozenset({408, 429, 500, 502, 503, 504, 529})
# Headers of the client's request that describe its own connection or body.
_NOT_FORWARDED = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "accept-encoding", "keep-alive"}
)
_NOT_RETURNED = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection"})
# The SDKs' default max_retries; past it the gateway retries itself.
SDK_RETRIES = 2
TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)


class _Retry(Exception):
    """The attempt's answer is retryable; another credential may do better."""


class _Cooling(_Retry):
    """No credential is usable now; the first comes back in `reset` seconds."""

    def __init__(self, reset: float):
        super().__init__(f"all cooling for {reset}s")
        self.reset = reset


class Failover:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder
        self._clients: dict[ProxyURL | None, httpx.AsyncClient] = {}

    def done(self) -> None:
        for client in self._clients.values():
            asyncio_utils.create_task(client.aclose(), name="quotio failover client", keep_ref=True)

    def _client(self, proxy: ProxyURL | None) -> httpx.AsyncClient:
        if proxy not in self._clients:
            self._clients[proxy] = httpx.AsyncClient(
                proxy=str(proxy) if proxy else None, timeout=TIMEOUT, trust_env=False
            )
        return self._clients[proxy]

    def error(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        gateway = self.holder.gateway
        if state is not None and state.plan is not None and gateway is not None:
            gateway.report(state.plan, 0, {}, b"")

    async def response(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        gateway = self.holder.gateway
        if state is None or gateway is None or state.plan is None or state.plan.local_reply is not None:
            return
        resp = flow.response
        if resp.status_code < 400:
            gateway.report(state.plan, resp.status_code, {}, b"")
            return
        body = b"" if resp.stream else (resp.get_content(strict=False) or b"")
        refused = providers.token_refused(state.plan.credential, resp.status_code, body)
        recoverable = refused and not resp.stream and not state.refreshed
        if recoverable and await self._recover(flow, state):
            return
        gateway.report(state.plan, resp.status_code, meta.lower_headers(resp.headers), body)
        if resp.status_code not in RETRYABLE or resp.stream:
            return
        if self._client_retries(state):
            resp.headers["x-should-retry"] = "true"
            resp.headers["retry-after-ms"] = "0"
            return
        if gateway.config.file.request_retry > 0:
            await self._failover(flow, state)

    async def _recover(self, flow: http.HTTPFlow, state: meta.FlowState) -> bool:
        """A 401: refresh the credential's token once and send the request again.

        True when the flow is taken care of (answered again, or handed back to
        a retrying SDK); False leaves the 401 to the usual cooldown rules.
        """
        gateway = self.holder.gateway
        cred = state.plan.credential
        if cred.source != "file" or not (gateway.tokens.refreshable(cred) or gateway.tokens.has_bearer(cred)):
            return False
        state.refreshed = True
        try:
            fresh = await gateway.tokens.recover(cred)
        except RefreshFailed as e:
            log.info("quotio: %s answered 401 and could not be refreshed: %s", cred.id, e)
            resp = flow.response
            gateway.report(state.plan, 401, meta.lower_headers(resp.headers), resp.get_content(strict=False) or b"")
            # The account is out (needs login) or cooling: another one may serve.
            if gateway.config.file.request_retry > 0:
                await self._failover(flow, state)
            return True
        if self._client_retries(state):
            flow.response.headers["x-should-retry"] = "true"
            flow.response.headers["retry-after-ms"] = "0"
            return True
        try:
            await self._attempt(flow, state, set(), 0, pin=fresh.id)
        except _Retry:
            if gateway.config.file.request_retry > 0:
                await self._failover(flow, state)
        return True

    @staticmethod
    def _client_retries(state: meta.FlowState) -> bool:
        if not state.plan.stream:
            return False
        count = (state.client_headers or {}).get("x-stainless-retry-count")
        return count is not None and count.isdigit() and int(count) < SDK_RETRIES

    async def _failover(self, flow: http.HTTPFlow, state: meta.FlowState) -> None:
        cfg = self.holder.gateway.config.file
        backoff = tenacity.wait_exponential_jitter(initial=0.05, max=max(cfg.max_retry_interval, 0.05), jitter=0.05)

        def wait(rs: tenacity.RetryCallState) -> float:
            # All cooling: wait for the first credential to come back.
            exc = rs.outcome.exception()
            return exc.reset if isinstance(exc, _Cooling) else backoff(rs)

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(cfg.request_retry),
            wait=wait,
            retry=tenacity.retry_if_exception_type(_Retry),
            reraise=True,
        )
        tried = {state.plan.credential.id}
        try:
            async for attempt in retrying:
                with attempt:
                    await self._attempt(flow, state, tried, cfg.max_retry_interval)
        except _Retry:
            pass  # out of attempts: the client gets the last answer

    async def _attempt(
        self, flow: http.HTTPFlow, state: meta.FlowState, tried: set[str], max_wait: float,
        pin: str | None = None,
    ) -> None:
        """One more attempt on a credential not tried yet; raises _Retry if it failed too."""
        gateway = self.holder.gateway
        failed = flow.response
        try:
            draft = gateway.draft(
                state.route, state.client_body, state.client_headers or {}, state.client_query or {},
                exclude=frozenset(tried), pin=pin,
            )
            draft = await gateway.ready(draft, frozenset(tried))
            if urls := draft.image_urls():
                draft.inline_images(await fetch_images(self._client(None), urls))
            plan = gateway.finalize(draft)
        except GatewayError as e:
            reset = float(e.extra.get("reset_seconds", 0)) if e.code == "model_cooldown" else None
            if reset is not None and reset <= max_wait:
                tried.clear()  # once cooled down, a credential may be tried again
                tried.add(state.plan.credential.id)
                raise _Cooling(reset) from e
            return  # nothing else to try: the client gets the last answer
        # The failed attempt gets its own row before the next one replaces it.
        submit(
            gateway, flow, state, state.plan,
            status=failed.status_code,
            latency_ms=(time.time() - flow.request.timestamp_start) * 1000,
            ttfb_ms=None, usage=Usage(),
            error=f"upstream {failed.status_code}; failing over to {plan.credential.id}",
            final=False,
        )
        tried.add(plan.credential.id)
        status, headers, content = await self._send(plan, state)
        gateway.report(plan, status, meta.lower_headers(headers), content)
        state.plan = plan
        state.attempt += 1
        state.stream_tap = None
        state.usage = None
        flow.response = http.Response.make(
            status or 502,
            content,
            [(k.encode(), v.encode()) for k, v in headers.items() if k.lower() not in _NOT_RETURNED],
        )
        cred = plan.credential
        flow.metadata.update({meta.PROVIDER: cred.provider, meta.CREDENTIAL: cred.id, meta.MODEL: plan.model_sent})
        flow.comment = (
            f"quotio: {cred.provider} · {cred.id} · {plan.model_requested} → {plan.model_sent}"
            f" (attempt {state.attempt})"
        )
        if status == 0 or status in RETRYABLE:
            raise _Retry(status)

    async def _send(self, plan: Plan, state: meta.FlowState) -> tuple[int, httpx.Headers, bytes]:
        headers = {
            k: v
            for k, v in (state.client_headers or {}).items()
            if k not in _NOT_FORWARDED and k not in CLIENT_SECRET_HEADERS
        }
        headers.update(plan.upstream.headers)
        headers["accept-encoding"] = "identity"
        body = plan.body if plan.body is not None else state.client_body
        try:
            r = await self._client(plan.proxy).post(plan.upstream.url, headers=headers, content=body)
        except httpx.HTTPError as e:
            log.info("quotio: failover attempt to %s failed: %s", plan.credential.id, type(e).__name__)
            return 0, httpx.Headers({"content-type": "application/json"}), b'{"error":{"message":"upstream unreachable"}}'
        return r.status_code, r.headers, r.content
