"""Moves a failed request to the next healthy credential.

mitmproxy sends a flow's request once, so a retry must happen one of two ways:

- A streaming request from an SDK that retries by itself (it sends
  `x-stainless-retry-count`: the official OpenAI and Anthropic SDKs, Claude
  Code) is answered with the upstream's retryable status plus
  `x-should-retry: true` and `retry-after-ms: 1` (the SDKs ignore 0 and back
  off half a second instead). The failed credential is
  already cooling, so the SDK's immediate retry takes the next one through
  mitmproxy's own streaming path.
- Everything else: the gateway sends the next attempt itself (httpx, async)
  and answers the flow with it. A streamed answer then arrives whole.

Every outcome is reported to the pool (cooldowns, breakers) and every attempt
becomes a record row with its attempt number. Connection failures are
reported from the `error` hook; the client gets mitmproxy's 502, which SDKs
retry, and the retry lands on another credential.

A failure the client caused (it hung up) is never reported: its credential
did nothing wrong. A client that leaves while the gateway is retrying for it
cancels that retry at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable

import httpx
import tenacity
from mitmproxy import http
from mitmproxy.utils import asyncio_utils

from quotio_core import providers
from quotio_core import formats
from quotio_core import retry
from quotio_core.errors import CLIENT_FORMATS, GatewayError, NoCredential, render_error
from quotio_core.faults import Fault, classify_exception
from quotio_core.gateway import Plan
from quotio_core.providers.login.keeper import RefreshFailed
from quotio_core.providers import CLIENT_SECRET_HEADERS
from quotio_core.proxyurl import ProxyURL
from quotio_core.formats.anthropic import request as anthropic_request, response as anthropic_response
from quotio_core.formats.sse import SSEDecoder
from quotio_core.formats import stream_usage
from quotio_core.formats.usage import Usage

from . import meta
from .meta import GatewayHolder

log = logging.getLogger("quotio")

# Headers of the client's request that describe its own connection or body.
_NOT_FORWARDED = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "accept-encoding", "keep-alive"}
)
_NOT_RETURNED = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection"})
# The SDKs' default max_retries; past it the gateway retries itself.
SDK_RETRIES = 2
# Milliseconds an SDK should wait before its retry: at once (they ignore 0).
RETRY_NOW = "1"
# How often a retry the gateway runs for a client looks whether it is still there.
CLIENT_WATCH_SECONDS = 0.05


UNREADABLE = "the upstream answered with a body that is not JSON; nothing usable came back"
INCOMPLETE = "the upstream's stream ended before its last event; nothing usable came back"


def _unusable(plan: Plan, resp: http.Response) -> str | None:
    """Why a buffered success cannot be used (an HTML page, half a JSON body, a broken stream)."""
    raw = resp.get_content(strict=False) or b""
    fmt = plan.provider_format
    if formats.is_stream(fmt, resp.headers.get("content-type", "")):
        # A stream-only upstream's answer, folded into one for a non-stream client.
        if formats.raw_bytes(fmt):
            return None  # a binary event stream: its decoder judges it when folding
        tracker = stream_usage(fmt)
        decoder = SSEDecoder()
        for event in decoder.feed(raw) + decoder.flush():
            tracker.observe(event)
        return None if tracker.complete else INCOMPLETE
    try:
        json.loads(raw)
    except ValueError:
        return UNREADABLE
    return None


def _bad_gateway(plan: Plan, resp: http.Response, message: str) -> None:
    """`resp` made a 502 in the upstream's error shape (translated for the client later)."""
    fmt = plan.provider_format if plan.provider_format in CLIENT_FORMATS else "openai"
    resp.status_code = 502
    resp.headers["content-type"] = "application/json"
    resp.headers.pop("content-encoding", None)
    resp.content = render_error(fmt, 502, "upstream_unreadable", message)


class _ClientGone(Exception):
    """The client hung up while the gateway was retrying for it."""


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
            t = self.holder.gateway.config.file.timeouts
            # Read covers waiting for the answer's head too: the longer of the two deadlines.
            timeout = httpx.Timeout(
                connect=t.connect_seconds, read=max(t.first_byte_seconds, t.idle_seconds),
                write=60.0, pool=t.connect_seconds,
            )
            self._clients[proxy] = httpx.AsyncClient(
                proxy=str(proxy) if proxy else None, timeout=timeout, trust_env=False
            )
        return self._clients[proxy]

    def error(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        gateway = self.holder.gateway
        if state is None or state.plan is None or gateway is None:
            return
        fault = meta.fault_of(flow, state)
        if fault is None or fault.side != "upstream":
            tap = state.stream_tap
            if tap is not None and tap.tracker.complete and flow.response is not None:
                # The client left after the last event: the credential served it well.
                gateway.report(state.plan, flow.response.status_code, {}, b"")
            return
        gateway.report(state.plan, 0, {}, b"")

    async def response(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        gateway = self.holder.gateway
        if state is None or gateway is None or state.plan is None or state.plan.local_reply is not None:
            return
        resp = flow.response
        if resp.status_code < 400 and resp.stream:
            tap = state.stream_tap
            # A stream that ended without its closing event failed like a 502 (its client got an error event).
            status = resp.status_code if tap is None or tap.tracker.complete else 502
            gateway.report(state.plan, status, {}, b"")
            return
        if resp.status_code < 400:
            problem = _unusable(state.plan, resp)
            if problem is None:
                gateway.report(state.plan, resp.status_code, {}, b"")
                return
            # The upstream failed as surely as with a 5xx: reported, retried
            # and failed over like one, and the client gets an error in its shape.
            _bad_gateway(state.plan, resp, problem)
        try:
            await self._while_client_waits(flow, self._handle_failure(flow, state))
        except _ClientGone:
            # mitmproxy notes the hang-up only after this hook, and calls no
            # error hook then: the record must learn it here.
            state.fault = Fault("client", "hang-up", "Client disconnected during the gateway's retry.")
            log.info("quotio: client left during a retry of %s; retry cancelled", flow.id)

    async def _handle_failure(self, flow: http.HTTPFlow, state: meta.FlowState) -> None:
        gateway = self.holder.gateway
        resp = flow.response
        body = b"" if resp.stream else (resp.get_content(strict=False) or b"")
        refused = providers.token_refused(state.plan.credential, resp.status_code, body)
        recoverable = refused and not resp.stream and not state.refreshed
        if recoverable and await self._recover(flow, state):
            return
        if not resp.stream and await self._foreign_signature(flow, state, body):
            return
        gateway.report(state.plan, resp.status_code, meta.lower_headers(resp.headers), body)
        if not retry.retryable(resp.status_code) or resp.stream:
            return
        if self._client_retries(state):
            resp.headers["x-should-retry"] = "true"
            resp.headers["retry-after-ms"] = RETRY_NOW
            return
        if gateway.config.file.request_retry > 0:
            await self._failover(flow, state)

    @staticmethod
    async def _while_client_waits(flow: http.HTTPFlow, work: Awaitable[None]) -> None:
        """Run `work`, cancelling it the moment the client hangs up (raises _ClientGone)."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=CLIENT_WATCH_SECONDS)
                if done:
                    return task.result()
                if meta.client_gone(flow):
                    task.cancel()
                    raise _ClientGone
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def _foreign_signature(self, flow: http.HTTPFlow, state: meta.FlowState, body: bytes) -> bool:
        """A 400 for a Claude thinking signature another account made: drop those blocks, retry once.

        Signatures only validate on the account that produced them, so a
        conversation that moved (failover, a cooldown, round-robin) would
        otherwise fail on every later turn. True when the flow was answered again.
        """
        plan = state.plan
        if state.stripped_thinking or state.route.fmt != "anthropic" or plan.provider_format != "anthropic":
            return False
        if not anthropic_response.is_signature_error(flow.response.status_code, body):
            return False
        try:
            request = json.loads(state.client_body)
        except ValueError:
            return False
        if not isinstance(request, dict) or not anthropic_request.strip_thinking(request):
            return False
        state.stripped_thinking = True
        log.info("quotio: %s refused another account's thinking signatures; retrying without them", plan.credential.id)
        self.holder.gateway.note_foreign_thinking(state.client_headers or {}, request, plan.credential.id)
        state.client_body = json.dumps(request).encode()
        try:
            await self._attempt(flow, state, set(), 0, pin=plan.credential.id)
        except _Retry:
            if self.holder.gateway.config.file.request_retry > 0:
                await self._failover(flow, state)
        return True

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
            flow.response.headers["retry-after-ms"] = RETRY_NOW
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
        backoff = retry.backoff(cfg.max_retry_interval)

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
            plan = await gateway.plan(
                state.route, state.client_body, state.client_headers or {}, state.client_query or {},
                exclude=frozenset(tried), pin=pin,
            )
        except NoCredential as e:
            if e.reset is not None and e.reset <= max_wait:
                tried.clear()  # once cooled down, a credential may be tried again
                tried.add(state.plan.credential.id)
                raise _Cooling(e.reset) from e
            return  # nothing else to try: the client gets the last answer
        except GatewayError:
            return
        # The failed attempt gets its own row before the next one replaces it.
        meta.record_attempt(
            self.holder, flow, state, state.plan,
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
        if retry.retryable(status):
            raise _Retry(status)
        if status == 400 and not state.stripped_thinking:
            # The conversation's thinking came from the account tried before.
            await self._foreign_signature(flow, state, content)

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
            fault = classify_exception(e)
            log.info("quotio: failover attempt to %s failed: %s", plan.credential.id, fault.error)
            message = json.dumps({"error": {"message": f"upstream {fault.kind}"}}).encode()
            return 0, httpx.Headers({"content-type": "application/json"}), message
        return r.status_code, r.headers, r.content
