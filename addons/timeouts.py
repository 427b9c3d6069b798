"""Connect and first-byte timeouts for upstream requests.

mitmproxy itself only closes connections that are idle (`tcp_timeout`, set
from `timeouts.idle-seconds`). A connection attempt or a first byte that takes
too long is ended here by cancelling the task that mitmproxy runs for that
server connection, which it already treats as a failed connection: the client
gets a 502 (its SDK retries, onto another credential since this one is now
cooling) and the `error` hook reports it.
"""

from __future__ import annotations

import asyncio

from mitmproxy import http
from mitmproxy.proxy import server_hooks

from .core import GatewayHolder


class Timeouts:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder
        self._connecting: dict[str, asyncio.TimerHandle] = {}
        # The task mitmproxy runs for each open server connection.
        self._server_tasks: dict[str, asyncio.Task] = {}
        self._waiting: dict[str, asyncio.TimerHandle] = {}

    def _ours(self, client) -> bool:
        return self.holder.gateway is not None and client.proxy_mode == self.holder.listen_mode

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        # Called from inside the task that is about to open the connection.
        task = asyncio.current_task()
        if task is None or not self._ours(data.client):
            return
        seconds = self.holder.gateway.config.file.timeouts.connect_seconds
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
        seconds = self.holder.gateway.config.file.timeouts.first_byte_seconds
        self._waiting[flow.id] = asyncio.get_running_loop().call_later(seconds, self._expire, flow, seconds)

    def _expire(self, flow: http.HTTPFlow, seconds: float) -> None:
        self._waiting.pop(flow.id, None)
        if flow.response is not None or flow.error is not None:
            return
        state = self.holder.flows.get(flow)
        if state is not None:
            state.error = f"no response from upstream within {seconds:g}s"
        if task := self._server_tasks.get(flow.server_conn.id):
            task.cancel(f"first-byte timeout after {seconds:g}s")

    def _done(self, flow: http.HTTPFlow) -> None:
        if timer := self._waiting.pop(flow.id, None):
            timer.cancel()

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._done(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._done(flow)
