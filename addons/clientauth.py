"""Client API-key check for everything but management and health routes."""

from __future__ import annotations

from mitmproxy import http

from quotio_core.clientauth import authorize, browser_refusal, presented_key
from quotio_core.errors import render_error
from quotio_core.install import install_secret
from quotio_core.providers import CLIENT_SECRET_HEADERS, CLIENT_SECRET_PARAMS

from . import meta
from .meta import GatewayHolder


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
        config = self.holder.gateway.config
        req = flow.request
        decision = authorize(
            config.file.api_keys, presented_key(req.headers, req.query), flow.client_conn.peername[0],
            install_secret(config.config_dir),
        )
        if decision.allowed and not config.file.api_keys:
            # Served for being local, so not to a web page the user happens to visit.
            has_body = req.headers.get("content-length", "0") != "0" or "transfer-encoding" in req.headers
            why = browser_refusal(req.method, meta.lower_headers(req.headers), config.reachable_hosts, has_body=has_body)
            if why:
                self._refuse(flow, state, 403, "forbidden", why)
                return
        if decision.allowed:
            state.client_key_id = decision.key_id
            state.authorized = True
            return
        code = "invalid_api_key" if decision.status == 401 else "forbidden"
        self._refuse(flow, state, decision.status, code, decision.message)

    @staticmethod
    def _refuse(flow: http.HTTPFlow, state: meta.FlowState, status: int, code: str, message: str) -> None:
        state.error = message
        meta.mask_secrets(flow, state)
        flow.response = meta.json_response(status, render_error(state.route.fmt or "openai", status, code, message))
