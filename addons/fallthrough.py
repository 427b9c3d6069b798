"""Nothing meant for the gateway goes on to CLIProxyAPI by accident.

An unrouted flow leaves for the reverse target (CLIProxyAPI) with whatever
it carries, client key or management key included. Only requests of kind
"passthrough" that passed the client-key check may. Anything else still
unanswered here means an addon before failed (mitmproxy logs an addon's
exception and goes on with the next): it gets a 500 in the client's shape
instead, with the id to find the traceback by.
"""

from __future__ import annotations

import logging

from mitmproxy import http

from quotio_core.errors import render_error

from . import meta
from .meta import GatewayHolder

log = logging.getLogger("quotio")


class Fallthrough:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def request(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        if state is None or not meta.is_fresh(flow) or state.plan is not None:
            return
        if state.route.kind == "passthrough" and state.authorized:
            return
        log.error("quotio: %s %s was left unanswered by the gateway (request %s); answered 500",
                  flow.request.method, state.client_path, flow.id)
        state.error = "internal error: the request was left unanswered"
        meta.mask_secrets(flow, state)
        message = f"the gateway could not handle this request; see its log (request {flow.id})"
        flow.response = meta.json_response(500, render_error(state.route.fmt or "openai", 500, "internal_error", message))
