"""Client API-key check for everything but management and health routes."""

from __future__ import annotations

from mitmproxy import http

from quotio_core.clientauth import authorize, presented_key
from quotio_core.errors import render_error
from quotio_core.providers import CLIENT_SECRET_HEADERS, CLIENT_SECRET_PARAMS

from . import meta
from .core import GatewayHolder


class ClientAuth:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        if not meta.is_fresh(flow) or state is None or self.holder.gateway is None:
            return
        route = state.route
        if route.kind in ("management", "health"):
            return
        # Whatever happens next, the client's key is not kept on the stored flow.
        state.secret_headers = CLIENT_SECRET_HEADERS
        state.secret_params = CLIENT_SECRET_PARAMS
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
        meta.mask_secrets(flow, state)
        flow.response = meta.json_response(
            decision.status, render_error(route.fmt or "openai", decision.status, code, decision.message)
        )
