"""Client API-key check for everything but management and health routes."""

from __future__ import annotations

from mitmproxy import http

from quotio_core.clientauth import authorize, presented_key
from quotio_core.errors import render_error
from quotio_core.routes import classify

from . import meta
from .core import GatewayHolder


class ClientAuth:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not meta.is_fresh(flow) or self.holder.gateway is None:
            return
        if flow.client_conn.proxy_mode != self.holder.listen_mode:
            return
        path = flow.request.path.split("?", 1)[0]
        state = self.holder.flows.open(
            flow, meta.FlowState(classify(flow.request.method, path), path)
        )
        route = state.route
        if route.kind in ("management", "health"):
            return
        decision = authorize(
            self.holder.gateway.config.file.api_keys,
            presented_key(flow.request.headers, flow.request.query),
            flow.client_conn.peername[0],
        )
        if decision.allowed:
            state.client_key_id = decision.key_id
            return
        code = "invalid_api_key" if decision.status == 401 else "forbidden"
        state.error = decision.message
        flow.response = meta.json_response(
            decision.status, render_error(route.fmt or "openai", decision.status, code, decision.message)
        )
