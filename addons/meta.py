"""What the addons share: the gateway they serve and what they know about a flow.

The one module addons import from each other: each addon's hooks read and
write a flow's `FlowState` here, never another addon.

`flow.metadata` is saved with the flow (`-w`, mitmweb), so it only gets
plain strings for people to read. The objects the addons hand on (route,
plan, stream tap) live in :class:`FlowStates`, keyed by flow id, from the
first hook that sees the flow to the `response`/`error` hook that ends it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mitmproxy import http
from mitmproxy.connection import ConnectionState

from quotio_core.faults import Fault, classify_flow_error
from quotio_core.admin.state import AdminState
from quotio_core.gateway import Gateway, Plan
from quotio_core.records import Record
from quotio_core.routes import ApiRoute
from quotio_core.formats.usage import Usage

PROVIDER = "quotio.provider"
CREDENTIAL = "quotio.credential"
MODEL = "quotio.model"

MASK = "***"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> http.Response:
    return http.Response.make(
        status,
        json.dumps(body).encode() if not isinstance(body, bytes) else body,
        {"content-type": "application/json", **(headers or {})},
    )


def lower_headers(headers) -> dict[str, str]:
    """Headers (mitmproxy's or httpx's) as a plain dict with lower-case names."""
    return {k.lower(): v for k, v in headers.items()}


def is_fresh(flow: http.HTTPFlow) -> bool:
    """Whether an earlier addon has not already answered or failed this flow."""
    return flow.response is None and flow.error is None and flow.live


@dataclass
class FlowState:
    route: ApiRoute
    client_path: str
    client_key_id: str | None = None
    # The client-key check passed: nothing is routed or passed on without it.
    authorized: bool = False
    plan: Plan | None = None
    # The stream callable: a same-format tap or a translator; all have `.tracker`.
    stream_tap: Any = None
    usage: Usage | None = None  # set when translating a buffered answer
    error: str | None = None  # why the gateway answered this itself
    # The request as the client sent it, for failover attempts to another credential.
    client_body: bytes = b""
    client_headers: dict[str, str] | None = None
    client_query: dict[str, str] | None = None
    attempt: int = 1
    # A 401 has already been answered with a token refresh; a second one is final.
    refreshed: bool = False
    # When the request left for the upstream (for x-quotio-overhead-ms).
    sent_at: float | None = None
    # Headers and query parameters holding secrets, masked once the request is sent.
    secret_headers: tuple[str, ...] = ()
    secret_params: tuple[str, ...] = ()
    # A deadline of the gateway's own that ended the upstream attempt.
    deadline: str | None = None
    # Who made the flow fail, once it has failed (see `fault_of`).
    fault: Fault | None = None
    # A foreign thinking signature was already stripped and retried once.
    stripped_thinking: bool = False


class FlowStates:
    def __init__(self) -> None:
        self._by_id: dict[str, FlowState] = {}

    def open(self, flow: http.HTTPFlow, state: FlowState) -> FlowState:
        self._by_id[flow.id] = state
        return state

    def get(self, flow: http.HTTPFlow) -> FlowState | None:
        return self._by_id.get(flow.id)

    def close(self, flow: http.HTTPFlow) -> FlowState | None:
        return self._by_id.pop(flow.id, None)

    def __len__(self) -> int:
        return len(self._by_id)


def client_gone(flow: http.HTTPFlow) -> bool:
    """Whether the client's connection can no longer be read (it closed or reset it)."""
    return not (flow.client_conn.state & ConnectionState.CAN_READ)


def fault_of(flow: http.HTTPFlow, state: FlowState) -> Fault | None:
    """Who made this flow fail (cached on the state); None while it has not failed."""
    if state.fault is None and flow.error is not None:
        state.fault = classify_flow_error(
            flow.error.msg,
            request_complete=flow.request.timestamp_end is not None,
            client_gone=client_gone(flow),
            gateway_reason=state.deadline,
        )
    return state.fault


def mask_secrets(flow: http.HTTPFlow, state: FlowState) -> None:
    req = flow.request
    for name in state.secret_headers:
        if name in req.headers:
            req.headers[name] = MASK
    for name in state.secret_params:
        if name in req.query:
            req.query[name] = MASK


class GatewayHolder:
    """The one shared reference every addon reads the current Gateway through."""

    def __init__(self) -> None:
        self.gateway: Gateway | None = None
        self.flows = FlowStates()
        # Counters and lockouts outlive a config reload's new gateway.
        self.admin = AdminState()
        # The parsed mode of the gateway's own listener; flows from other
        # listeners (a user's forward proxy) are left alone.
        self.listen_mode = None
        # keep_host_header was switched on for the gateway's sake: a user's
        # own reverse listeners get mitmproxy's Host rewrite from Intake.
        self.restore_host_header = False


def record_attempt(
    holder: GatewayHolder,
    flow: http.HTTPFlow,
    state: FlowState,
    plan: Plan | None,
    *,
    status: int,
    latency_ms: float,
    ttfb_ms: float | None,
    usage: Usage,
    error: str | None,
    final: bool = True,
) -> None:
    """One row for one attempt; failover attempts of a flow share its request id.

    `final` is False for an attempt the gateway failed over from: it is a
    row of its own but not the client's request.
    """
    record = Record(
        ts=flow.request.timestamp_start,
        request_id=flow.id,
        client_key_id=state.client_key_id,
        method=flow.request.method,
        route=state.client_path,
        client_format=state.route.fmt,
        provider=plan.credential.provider if plan else None,
        credential_id=plan.credential.id if plan else None,
        model_requested=plan.model_requested if plan else None,
        model_sent=plan.model_sent if plan else None,
        stream=bool(plan and plan.stream),
        status=status,
        latency_ms=latency_ms,
        ttfb_ms=ttfb_ms,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        error=error,
        attempt=state.attempt,
    )
    holder.gateway.records.submit(record, secrets=[plan.credential.secret] if plan else ())
    holder.admin.metrics.observe(record, final)
