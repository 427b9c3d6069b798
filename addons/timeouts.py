"""Connect, first-byte and idle deadlines for upstream requests.

mitmproxy only closes connections on which nothing at all moves
(`tcp_timeout`), and keep-alive comments count as movement. So the gateway
keeps its own deadlines per attempt and ends one that is overdue by
cancelling the task mitmproxy runs for that server connection, which it
treats as a failed connection. The deadline's name is put on the flow's
state first, so the failure is charged to the upstream (quotio_core/faults.py)
and not to the client whose connection mitmproxy then closes.

- connect: opening the upstream connection;
- first byte: from the request leaving until the upstream's response headers
  (the idle deadline instead, when that is shorter);
- idle: after the headers, the upstream sending nothing for this long (for a
  stream: since its last bytes; for a buffered answer: since the last bytes
  on the client's connection, which only the upstream's data moves while the
  client waits for a buffered answer).
"""

from __future__ import annotations

import asyncio
import time

from mitmproxy import ctx, http
from mitmproxy.proxy import server_hooks
from mitmproxy.utils import asyncio_utils

from .meta import GatewayHolder

# Idle deadlines are checked this often at most (and a few times per deadline).
IDLE_CHECK_SECONDS = 1.0


def _last_activity(flow: http.HTTPFlow) -> float | None:
    """When mitmproxy last saw bytes on the flow's client connection (either direction's events)."""
    proxyserver = ctx.master.addons.get("proxyserver")
    handler = getattr(proxyserver, "connections", {}).get(flow.client_conn.id)
    watchdog = getattr(handler, "timeout_watchdog", None)
    return getattr(watchdog, "last_activity", None)


class Timeouts:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder
        self._connecting: dict[str, asyncio.TimerHandle] = {}
        # The task mitmproxy runs for each open server connection.
        self._server_tasks: dict[str, asyncio.Task] = {}
        self._waiting: dict[str, asyncio.TimerHandle] = {}
        # Flows receiving an answer: flow id -> (flow, when its headers came).
        self._receiving: dict[str, tuple[http.HTTPFlow, float]] = {}
        self._idle_loop: asyncio.Task | None = None

    def running(self) -> None:
        self._idle_loop = asyncio_utils.create_task(self._watch_idle(), name="quotio idle deadline", keep_ref=True)

    def done(self) -> None:
        if self._idle_loop is not None:
            self._idle_loop.cancel()

    def _ours(self, client) -> bool:
        return self.holder.gateway is not None and client.proxy_mode == self.holder.listen_mode

    def _timeouts(self):
        return self.holder.gateway.config.file.timeouts

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        # Called from inside the task that is about to open the connection.
        task = asyncio.current_task()
        if task is None or not self._ours(data.client):
            return
        seconds = self._timeouts().connect_seconds
        self._connecting[data.server.id] = asyncio.get_running_loop().call_later(
            seconds, task.cancel, f"connect timeout after {seconds:g}s"
        )

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        if timer := self._connecting.pop(data.server.id, None):
            timer.cancel()
        if self._ours(data.client) and (task := asyncio.current_task()) is not None:
            self._server_tasks[data.server.id] = task

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        if timer := self._connecting.pop(data.server.id, None):
            timer.cancel()

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._server_tasks.pop(data.server.id, None)

    def request(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        if state is None or state.plan is None or flow.response is not None:
            return
        t = self._timeouts()
        # An upstream silent for the idle deadline is cut even before its first byte.
        if t.idle_seconds < t.first_byte_seconds:
            seconds, reason = t.idle_seconds, f"idle timeout: upstream sent nothing for {t.idle_seconds:g}s"
        else:
            seconds = t.first_byte_seconds
            reason = f"first-byte timeout: no response from upstream within {seconds:g}s"
        self._waiting[flow.id] = asyncio.get_running_loop().call_later(seconds, self._expire, flow, reason)

    def _expire(self, flow: http.HTTPFlow, reason: str) -> None:
        self._waiting.pop(flow.id, None)
        self._receiving.pop(flow.id, None)
        if flow.error is not None or (flow.response is not None and flow.response.timestamp_end):
            return
        state = self.holder.flows.get(flow)
        if state is not None:
            state.deadline = reason
        if task := self._server_tasks.get(flow.server_conn.id):
            task.cancel(reason)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if timer := self._waiting.pop(flow.id, None):
            timer.cancel()
            self._receiving[flow.id] = (flow, time.time())

    async def _watch_idle(self) -> None:
        while True:
            gateway = self.holder.gateway
            idle = gateway.config.file.timeouts.idle_seconds if gateway is not None else 60
            await asyncio.sleep(min(IDLE_CHECK_SECONDS, idle / 4))
            now = time.time()
            for flow, headers_at in list(self._receiving.values()):
                state = self.holder.flows.get(flow)
                tap = state.stream_tap if state is not None else None
                moved = tap.last_chunk_at if tap is not None else _last_activity(flow)
                if now - max(headers_at, moved or 0) >= idle:
                    self._expire(flow, f"idle timeout: upstream sent nothing for {idle:g}s")

    def _done(self, flow: http.HTTPFlow) -> None:
        if timer := self._waiting.pop(flow.id, None):
            timer.cancel()
        self._receiving.pop(flow.id, None)

    def response(self, flow: http.HTTPFlow) -> None:
        self._done(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._done(flow)
