"""SSE keep-alive comments while a streamed answer is silent (a long first token).

mitmproxy writes to the client only when upstream bytes arrive, and has no
public way to send response bytes on a timer. So a timer per open SSE stream
hands mitmproxy an event it routes to that flow's HTTP stream as if upstream
data had arrived: an injected message (so the HTTP layer finds the stream by
its flow) that is also response data (so the stream passes it to the
`response.stream` callable). The callable, wrapped here, answers that tick
with `: keep-alive` instead of passing it to the tap or translator.

This leans on mitmproxy internals (its HTTP layer's routing of injected
messages and its stream states), which is why the tick is sent only after
checking, in the same event-loop step, that the stream is still passing a
response body on; mitmproxy is pinned below 13. Before the upstream's
headers arrive nothing can be sent: the client's response has not begun.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.proxy import events
from mitmproxy.proxy.layers.http import HttpLayer, HttpStream, ResponseData
from mitmproxy.utils import asyncio_utils

from .meta import GatewayHolder

log = logging.getLogger("quotio")

COMMENT = b": keep-alive\n\n"


class _Tick(bytes):
    """The data of an injected tick: empty, and told apart from real data by type."""


TICK = _Tick()


class _TickEvent(ResponseData, events.MessageInjected):
    """Routed by the HTTP layer like an injected message, handled by the stream as data."""

    def __init__(self, flow: http.HTTPFlow) -> None:
        self.flow = flow
        self.message = None
        self.stream_id = 0
        self.data = TICK


class Heartbeat:
    """Wraps a flow's stream callable: remembers when bytes last went out, answers ticks."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last = time.monotonic()

    def __call__(self, data: bytes):
        if data is TICK:
            self.last = time.monotonic()
            return [COMMENT]
        out = self.inner(data)
        if out:
            self.last = time.monotonic()
        return out


def _http_stream(handler: Any, flow: http.HTTPFlow) -> HttpStream | None:
    layer, depth = getattr(handler, "layer", None), 0
    while layer is not None and depth < 32 and not isinstance(layer, HttpLayer):
        layer = getattr(layer, "child_layer", None) or getattr(layer, "layer", None)
        depth += 1
    if not isinstance(layer, HttpLayer):
        return None
    return next((s for s in layer.streams.values() if getattr(s, "flow", None) is flow), None)


class KeepAlive:
    """One loop for all open SSE streams: a task per stream would cost every request."""

    def __init__(self, holder: GatewayHolder):
        self.holder = holder
        self._beats: dict[str, tuple[http.HTTPFlow, Heartbeat]] = {}
        self._loop: asyncio.Task | None = None

    def running(self) -> None:
        self._loop = asyncio_utils.create_task(self._watch(), name="quotio keep-alive", keep_ref=True)

    def done(self) -> None:
        if self._loop is not None:
            self._loop.cancel()

    def _interval(self) -> float:
        gateway = self.holder.gateway
        return gateway.config.file.timeouts.keepalive_seconds if gateway is not None else 0.0

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        if resp is None or not callable(resp.stream) or self.holder.flows.get(flow) is None:
            return
        if self._interval() <= 0 or not resp.headers.get("content-type", "").startswith("text/event-stream"):
            return
        beat = Heartbeat(resp.stream)
        resp.stream = beat
        self._beats[flow.id] = (flow, beat)

    async def _watch(self) -> None:
        while True:
            interval = self._interval()
            # Checking a few times per interval bounds how late a comment can be.
            await asyncio.sleep(min(interval / 3, 1.0) if interval > 0 else 1.0)
            now = time.monotonic()
            for flow_id, (flow, beat) in list(self._beats.items()):
                if interval > 0 and now - beat.last >= interval and not await self._tick(flow):
                    self._beats.pop(flow_id, None)

    async def _tick(self, flow: http.HTTPFlow) -> bool:
        proxyserver = ctx.master.addons.get("proxyserver")
        handler = getattr(proxyserver, "connections", {}).get(flow.client_conn.id)
        stream = _http_stream(handler, flow) if handler is not None else None
        # Checked and sent without yielding to the loop in between, so the
        # stream cannot leave this state before the tick reaches it.
        if stream is None or stream.server_state != stream.state_stream_response_body:
            return False
        await handler.server_event(_TickEvent(flow))
        return True

    def response(self, flow: http.HTTPFlow) -> None:
        self._beats.pop(flow.id, None)

    def error(self, flow: http.HTTPFlow) -> None:
        self._beats.pop(flow.id, None)
