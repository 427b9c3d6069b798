"""Connection-level failures answered in the client's own API shape, not mitmproxy's HTML.

When the upstream's connection fails (refused, reset, cut mid-stream, a
deadline of the gateway's), mitmproxy answers the client itself once the
`error` hook is done: its HTML "502 Bad Gateway" page if nothing was sent
yet, or a connection closed in the middle of a stream, which SDKs report as
a broken transport. Neither is the client's API.

For an HTTP/1 client on a plain connection (every agent and SDK talking to
the gateway on loopback), this addon answers first, from the `error` hook:
a JSON error in the client's format with `connection: close`, or, mid-stream,
one last chunk holding an error event in the stream's format (the body is
left unfinished, so no client mistakes the connection for reusable). It then
closes the connection, so mitmproxy's page is never
written (its writes to a closing transport are skipped). That goes around
mitmproxy's HTTP layer, whose only way to send is an upstream's answer,
which is why it is limited to the case where the bytes on the wire are
known: HTTP/1.1 without TLS. TLS and HTTP/2 clients keep mitmproxy's answer.

A request body over `max-request-body-mb` is refused by mitmproxy while it
arrives (its `body_size_limit`); that refusal, too, is answered here: 413 in
the client's shape.
"""

from __future__ import annotations

import asyncio
import http as stdlib_http

from mitmproxy import ctx, http

from quotio_core.errors import render_error
from quotio_core.faults import Fault

from . import meta
from .meta import GatewayHolder

_WHAT = {
    "refused": "could not be reached",
    "dns": "could not be found",
    "tls": "failed its TLS handshake",
    "timeout": "did not answer in time",
    "reset": "closed the connection",
    "protocol": "sent a broken answer",
    "too-large": "sent an answer over the size limit",
}


def client_message(fault: Fault, started: bool) -> str:
    # What failed, not where: no host, port or upstream text for the client.
    what = f"the upstream {_WHAT.get(fault.kind, 'failed')}"
    return f"{what}; the answer is incomplete" if started else what


def _client_writer(flow: http.HTTPFlow) -> asyncio.StreamWriter | None:
    client = flow.client_conn
    if client.tls or client.transport_protocol != "tcp" or not flow.request.http_version.startswith("HTTP/1"):
        return None
    proxyserver = ctx.master.addons.get("proxyserver")
    handler = getattr(proxyserver, "connections", {}).get(client.id)
    io = getattr(handler, "transports", {}).get(client)
    writer = getattr(io, "writer", None)
    if not isinstance(writer, asyncio.StreamWriter) or writer.is_closing():
        return None
    return writer


def _whole_answer(flow: http.HTTPFlow, fmt: str, fault: Fault) -> bytes:
    code = f"upstream_{fault.kind.replace('-', '_')}"
    return _answer(flow, fault.status, render_error(fmt, fault.status, code, client_message(fault, started=False)))


def _too_large(flow: http.HTTPFlow, fmt: str, gateway) -> bytes:
    limit = gateway.config.file.max_request_body_mb if gateway is not None else 0
    message = f"request body larger than {limit:g} MB (max-request-body-mb)"
    return _answer(flow, 413, render_error(fmt, 413, "request_too_large", message), retry=False)


def _answer(flow: http.HTTPFlow, status: int, body: bytes, retry: bool = True) -> bytes:
    head = (
        f"HTTP/1.1 {status} {stdlib_http.HTTPStatus(status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        f"x-quotio-request-id: {flow.id}\r\n"
        # The failed credential is already cooling: a retry now goes elsewhere
        # (1 ms: the SDKs ignore 0 and back off instead).
        + ("x-should-retry: true\r\nretry-after-ms: 1\r\n" if retry else "x-should-retry: false\r\n")
        + "connection: close\r\n\r\n"
    )
    return head.encode() + body


class ClientErrors:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def error(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        if state is None:
            return
        fault = meta.fault_of(flow, state)
        if fault is not None and fault.side == "client" and fault.kind == "too-large":
            # mitmproxy's HTML 413 would answer an API client otherwise.
            if (writer := _client_writer(flow)) is not None:
                writer.write(_too_large(flow, state.route.fmt or "openai", self.holder.gateway))
                writer.close()
            return
        if state.route.kind != "api" or state.plan is None or fault is None or not fault.upstream:
            return
        writer = _client_writer(flow)
        if writer is None:
            return
        resp = flow.response
        if resp is None or not resp.stream:
            raw = _whole_answer(flow, state.route.fmt or "openai", fault)
        else:
            tap = state.stream_tap
            if tap is None or "content-length" in resp.headers:
                return
            data = tap.fail(client_message(fault, started=True))
            if not data:
                return
            # No closing chunk: the body stays unfinished, so no client takes
            # the connection for reusable; SDKs raise at the error event.
            chunked = "chunked" in resp.headers.get("transfer-encoding", "").lower()
            raw = b"%x\r\n%s\r\n" % (len(data), data) if chunked else data
        writer.write(raw)
        writer.close()
