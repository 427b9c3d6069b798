"""Routes an API request to a provider and injects that provider's credential.

The client's own key never travels on: it is removed before the upstream's
URL and headers from the plan are applied.
"""

from __future__ import annotations

import logging

from mitmproxy import connection, http

from quotio_core.answers import buffered
from quotio_core.errors import GatewayError, render_error
from quotio_core.providers import CLIENT_SECRET_HEADERS, CLIENT_SECRET_PARAMS

from . import meta
from .meta import GatewayHolder

log = logging.getLogger("quotio")


class Router:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    async def request(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        gateway = self.holder.gateway
        if not meta.is_fresh(flow) or state is None or gateway is None:
            return
        route = state.route
        if not state.authorized:
            return  # the client-key check did not pass (or did not run): Fallthrough answers
        if route.kind == "passthrough":
            if not gateway.config.passthrough_enabled:
                msg = f"no route for {flow.request.method} {flow.request.path.split('?')[0]}"
                flow.response = meta.json_response(404, render_error("openai", 404, "not_found", msg))
                return
            _forward_to_cliproxyapi(flow)
            return
        if route.kind != "api":
            return
        req = flow.request
        state.client_body = req.get_content(strict=False) or b""
        state.client_headers = meta.lower_headers(req.headers)
        state.client_query = dict(req.query)
        try:
            plan = await gateway.plan(route, state.client_body, state.client_headers, state.client_query)
        except GatewayError as e:
            state.error = e.message
            flow.response = meta.json_response(
                e.status, render_error(route.fmt, e.status, e.code, e.message, e.extra), e.headers
            )
            return
        except Exception as e:  # a translator bug must not send the request on unrouted
            log.exception("quotio: cannot route %s", state.client_path)
            state.error = f"internal error: {type(e).__name__}"
            msg = "the gateway could not prepare this request; see its log"
            flow.response = meta.json_response(500, render_error(route.fmt, 500, "internal_error", msg))
            return
        if plan.local_reply is not None:
            state.plan = plan
            flow.response = meta.json_response(200, plan.local_reply)
            return
        for name in CLIENT_SECRET_HEADERS:
            req.headers.pop(name, None)
        req.url = plan.upstream.url
        for name in CLIENT_SECRET_PARAMS:
            req.query.pop(name, None)
        for name, value in plan.upstream.headers.items():
            req.headers[name] = value
        # Streams are passed on chunk by chunk; a compressed stream could not be.
        req.headers["accept-encoding"] = "identity"
        if plan.body is not None:
            req.content = plan.body
        _route_via(flow, plan.proxy)
        cred = plan.credential
        state.plan = plan
        state.secret_headers = plan.upstream.secret_headers
        state.secret_params = ()
        flow.metadata.update(
            {meta.PROVIDER: cred.provider, meta.CREDENTIAL: cred.id, meta.MODEL: plan.model_sent}
        )
        flow.comment = f"quotio: {cred.provider} · {cred.id} · {plan.model_requested} → {plan.model_sent}"

    def response(self, flow: http.HTTPFlow) -> None:
        """Put a buffered (non-stream) answer in the client's terms."""
        state = self.holder.flows.get(flow)
        plan = state.plan if state else None
        resp = flow.response
        if plan is None or resp is None or resp.stream or plan.local_reply is not None:
            return
        raw = resp.get_content(strict=False) or b""
        answer = buffered(plan, resp.status_code, resp.headers.get("content-type", ""), raw)
        if answer is None:
            return
        resp.headers.pop("content-encoding", None)
        resp.status_code = answer.status
        resp.headers["content-type"] = answer.content_type
        resp.content = answer.body
        if answer.usage is not None:
            state.usage = answer.usage
        state.error = state.error or answer.error


def _forward_to_cliproxyapi(flow: http.HTTPFlow) -> None:
    """Every passthrough request reaches CLIProxyAPI from 127.0.0.1: say who really sent it,
    so its own rules for remote callers still apply."""
    req = flow.request
    client = flow.client_conn.peername[0]
    # Only the gateway's word counts: a client's own forwarding headers are dropped.
    req.headers["x-forwarded-for"] = client
    req.headers["x-real-ip"] = client
    req.host_header = f"{req.host}:{req.port}"


def _route_via(flow: http.HTTPFlow, proxy) -> None:
    """Reach the upstream through `proxy` (or directly when None).

    A flow starts out with the server connection of the previous request on
    the same client connection, proxy included; it is set every time so a
    direct request never inherits another credential's proxy.
    """
    via = (proxy.scheme, (proxy.host, proxy.port)) if proxy is not None else None
    if flow.server_conn.via == via:
        return
    if flow.server_conn.connected:
        # mitmproxy forbids changing an open connection; ask for a new one.
        flow.server_conn = connection.Server(address=flow.server_conn.address)
    flow.server_conn.via = via
