"""Answers `/v0/management/*` and the health probes without touching an upstream."""

from __future__ import annotations

import logging

from mitmproxy import http

from quotio_core.clientauth import JSON, browser_refusal, is_loopback
from quotio_core.admin.management import Management as Handlers
from quotio_core.admin.management import Reply, management_access

from . import meta
from .meta import GatewayHolder

log = logging.getLogger("quotio")

PREFIX = "/v0/management"
MULTIPART = "multipart/form-data"
# What a management request's body is replaced with on the flow once read.
KEPT_OUT = b"(management request body: not kept on the flow, it may hold secrets)"
DASHBOARD = PREFIX + "/dashboard"
_PROBES = {"/health": "/health", "/healthz": "/health", "/ready": "/ready", "/live": "/live"}


class Management:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder
        self._handlers: tuple[object, Handlers] | None = None

    def _for(self, gateway) -> Handlers:
        # Rebuilt when a config reload replaces the gateway.
        if self._handlers is None or self._handlers[0] is not gateway:
            self._handlers = (gateway, Handlers(gateway, self.holder.admin))
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
        req = flow.request
        headers = meta.lower_headers(req.headers)
        body = req.get_content(strict=False) or b""
        # The key and any written body (auth files, keys) must not stay on the
        # flow, whatever the answer: a refused request included.
        _forget_secrets(flow, path)
        page = path == DASHBOARD and req.method in ("GET", "HEAD")
        peer = flow.client_conn.peername[0]
        remote = gateway.config.file.remote_management
        refusal = management_access(remote.secret_key, remote.allow_remote, headers, peer, self.holder.admin.lockout)
        # The dashboard page holds no data (it asks for the key and sends it
        # on every API call), so only the network rules apply to the page itself.
        if refusal is not None and refusal.status == 401 and page:
            refusal = None
        if refusal is None and is_loopback(peer):
            # Trusted for being local: not if a web page sent it.
            why = browser_refusal(
                req.method, headers, gateway.config.reachable_hosts, has_body=bool(body),
                body_types=(JSON, MULTIPART), navigation=page,
            )
            refusal = Reply(403, {"error": why}) if why else None
        if refusal is not None:
            flow.response = meta.json_response(refusal.status, refusal.body)
            return
        if headers.get("content-type", "").startswith(MULTIPART):
            # CLIProxyAPI's uploads (vertex/import, auth-files) send the file as form field "file".
            body = _form_file(headers["content-type"], body)
        try:
            reply = await self._for(gateway).handle(req.method, path.removeprefix(PREFIX), dict(req.query), body)
        except Exception:
            # Never left for the passthrough: it would carry the request to CLIProxyAPI.
            log.exception("quotio: management route %s %s failed (request %s)", req.method, path, flow.id)
            reply = Reply(500, {"error": "the management route failed; see the gateway log", "request_id": flow.id})
        if reply.content_type == "application/json":
            flow.response = meta.json_response(reply.status, reply.body)
        else:
            raw = reply.body if isinstance(reply.body, bytes) else str(reply.body).encode()
            flow.response = http.Response.make(
                reply.status, raw, {"content-type": reply.content_type, "cache-control": "no-store"}
            )


def _forget_secrets(flow: http.HTTPFlow, path: str) -> None:
    req = flow.request
    if path == DASHBOARD and "key" in req.query:
        # The page reads its key from the address (in the browser); the gateway never needs it.
        req.query["key"] = meta.MASK
    for name in ("authorization", "x-management-key"):
        if name in req.headers:
            req.headers[name] = meta.MASK
    if req.raw_content:
        req.content = KEPT_OUT


def _form_file(content_type: str, body: bytes) -> bytes:
    """The "file" field of a multipart form (the request's own copy is already masked)."""
    probe = http.Request.make("POST", "http://x/", body, {"content-type": content_type})
    return next((v for k, v in probe.multipart_form.items(multi=True) if k == b"file"), body)
