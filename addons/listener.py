"""Puts mitmproxy into reverse mode on the gateway's address by itself.

Started in the default mode, `mitmdump -s addons/quotio.py` listens as the
gateway only; a `--mode` list the user gave is kept and the gateway's
listener is added to it. Unrouted requests go to the reverse target, which is
CLIProxyAPI on 127.0.0.1:QUOTIO_CLI_PROXY_PORT.

mitmdump loads `-s` scripts only after it has started the default mode's
listener (8080), so that listener exists for a moment; `quotio serve` passes
the gateway's mode on the command line and avoids it.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.utils import asyncio_utils

from .meta import GatewayHolder

log = logging.getLogger("quotio")

TCP_TIMEOUT_MARGIN = 30


class Listener:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder
        self._added: str | None = None
        # The option values we set, so a user's own are never overwritten.
        self._set_body_limit: str | None = None

    def configure(self, updated: set[str]) -> None:
        gateway = self.holder.gateway
        if gateway is None:
            return
        self._guard_options(gateway)
        t = gateway.config.file.timeouts
        # The gateway's own deadlines (addons/timeouts.py) end a silent
        # attempt first and charge it to the upstream; mitmproxy's would close
        # the client's connection and look like a hang-up. Its own stays for idle
        # keep-alive connections, a little later.
        backstop = int(max(t.idle_seconds, t.first_byte_seconds)) + TCP_TIMEOUT_MARGIN
        if ctx.options.tcp_timeout != backstop:
            ctx.options.update(tcp_timeout=backstop)
        ours = gateway.config.listen_mode
        self.holder.listen_mode = ProxyMode.parse(ours)
        modes = list(ctx.options.mode)
        if ours in modes:
            return
        # A config reload may move the gateway: replace the listener we added before.
        modes = [m for m in modes if m != self._added]
        if modes == ["regular"]:
            modes = []
        self._added = ours
        ctx.options.update(mode=modes + [ours], connection_strategy="lazy")

    def _guard_options(self, gateway) -> None:
        # The client's own Host is what tells a DNS-rebinding web page apart
        # (quotio_core/clientauth.py); reverse mode would overwrite it before
        # any addon looks. Intake restores mitmproxy's rewrite for other listeners.
        if not ctx.options.keep_host_header:
            self.holder.restore_host_header = True
            ctx.options.update(keep_host_header=True)
        # Larger bodies are refused while they arrive (413), never buffered whole.
        limit = str(int(gateway.config.file.max_request_body_mb * 1024 * 1024))
        current = ctx.options.body_size_limit
        if current is None or (current == self._set_body_limit and current != limit):
            self._set_body_limit = limit
            ctx.options.update(body_size_limit=limit)

    def running(self) -> None:
        # mitmdump loads scripts lazily, after it has already brought up the
        # listeners of the default mode; bring the servers in line with the
        # mode list now (a no-op when our listener is already up).
        proxyserver = ctx.master.addons.get("proxyserver")
        if proxyserver is not None and self.holder.listen_mode is not None:
            asyncio_utils.create_task(self._listen(proxyserver), name="quotio listener", keep_ref=True)

    async def _listen(self, proxyserver) -> None:
        await proxyserver.setup_servers()
        ours = next((s for s in proxyserver.servers if s.mode == self.holder.listen_mode), None)
        if ours is None or not ours.is_running:
            # A gateway without its listener would only look alive.
            reason = getattr(ours, "last_exception", None) or "no listener was started"
            log.error("quotio: cannot listen on %s: %s; stopping", self._address(), reason)
            ctx.master.shutdown()

    def _address(self) -> str:
        mode = self.holder.listen_mode
        return f"{mode.listen_host() or '*'}:{mode.listen_port()}" if mode is not None else "?"
