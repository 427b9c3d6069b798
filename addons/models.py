"""Answers the model listing routes from what the credentials can serve."""

from __future__ import annotations

from mitmproxy import http

from quotio_core.errors import render_error
from quotio_core.formats.models import anthropic_list, gemini_list, gemini_model, openai_list

from . import meta
from .meta import GatewayHolder


def wants_anthropic(headers: http.Headers) -> bool:
    return "anthropic-version" in headers or headers.get("user-agent", "").startswith("claude-cli")


class Models:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def request(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        gateway = self.holder.gateway
        if not meta.is_fresh(flow) or state is None or state.route.kind != "models" or gateway is None:
            return
        route = state.route
        ids = gateway.router.model_ids()
        if route.fmt == "gemini" and route.model:
            found = gemini_model(ids, route.model)
            if found is None:
                msg = f"model {route.model!r} is not served by any configured credential"
                flow.response = meta.json_response(404, render_error("gemini", 404, "model_not_found", msg))
            else:
                flow.response = meta.json_response(200, found)
        elif route.fmt == "gemini":
            flow.response = meta.json_response(200, gemini_list(ids))
        elif wants_anthropic(flow.request.headers):
            flow.response = meta.json_response(200, anthropic_list(ids))
        else:
            flow.response = meta.json_response(200, openai_list(ids))
