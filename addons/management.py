"""Answers `/v0/management/*` and the health probes without touching an upstream."""

from __future__ import annotations

from mitmproxy import http

from quotio_core.management import Management as Handlers
from quotio_core.management import management_access

from . import meta
from .core import GatewayHolder

PREFIX = "/v0/management"
DASHBOARD = PREFIX + "/dashboard"
_PROBES = {"/health": "/health", "/healthz": "/health", "/ready": "/ready", "/live": "/live"}


class Management:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder
        self._handlers: tuple[object, Handlers] | None = None

    def _for(self, gateway) -> Handlers:
        # Rebuilt when a config reload replaces the gateway.
        if self._handlers is None or self._handlers[0] is not gateway:
            self._handlers = (gateway, Handlers(gateway))
        return self._handlers[1]

    async def request(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        gateway = self.holder.gateway
        if not meta.is_fresh(flow) or state is None or gateway is None:
            return
        route = state.route
        path = flow.request.path.split("?", 1)[0].rstrip("/")
        if route.kind == "health":
            reply = await self._for(gateway).handle("GET", _PROBES[path], {})
            body = reply.body if path != "/health" and path != "/healthz" else {"status": "ok"}
            flow.response = meta.json_response(reply.status, body)
            return
        if route.kind != "management":
            return
        if path == DASHBOARD and "key" in flow.request.query:
            # The page reads its key from the address (in the browser); the gateway never needs it.
            flow.request.query["key"] = meta.MASK
        remote = gateway.config.file.remote_management
        refusal = management_access(
            remote.secret_key, remote.allow_remote, flow.request.headers, flow.client_conn.peername[0]
        )
        # The dashboard page holds no data (it asks for the key and sends it
        # on every API call), so only the network rules apply to the page itself.
        page = path == DASHBOARD and flow.request.method in ("GET", "HEAD")
        if refusal is not None and refusal.status == 401 and page:
            refusal = None
        if refusal is not None:
            flow.response = meta.json_response(refusal.status, refusal.body)
            return
        body = flow.request.get_content(strict=False) or b""
        if flow.request.headers.get("content-type", "").startswith("multipart/form-data"):
            # CLIProxyAPI's uploads (vertex/import, auth-files) send the file as form field "file".
            parts = flow.request.multipart_form
            body = next((v for k, v in parts.items(multi=True) if k == b"file"), body)
        reply = await self._for(gateway).handle(
            flow.request.method, path.removeprefix(PREFIX), dict(flow.request.query), body
        )
        if reply.content_type == "application/json":
            flow.response = meta.json_response(reply.status, reply.body)
        else:
            raw = reply.body if isinstance(reply.body, bytes) else str(reply.body).encode()
            flow.response = http.Response.make(
                reply.status, raw, {"content-type": reply.content_type, "cache-control": "no-store"}
            )
        # The management key must not be kept on a saved flow.
        for name in ("authorization", "x-management-key"):
            if name in flow.request.headers:
                flow.request.headers[name] = meta.MASK
