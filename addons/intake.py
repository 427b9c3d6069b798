"""Classifies each request that arrives on the gateway's listener.

Flows from other listeners (a user's `--mode regular@8080` forward proxy)
get no state, and so every later gateway addon leaves them alone.
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.net.http import url
from mitmproxy.proxy.mode_specs import ReverseMode

from quotio_core.routes import classify

from . import meta
from .meta import GatewayHolder


class Intake:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not meta.is_fresh(flow) or self.holder.gateway is None:
            return
        mode = flow.client_conn.proxy_mode
        if mode != self.holder.listen_mode:
            if self.holder.restore_host_header and isinstance(mode, ReverseMode):
                # What mitmproxy does for reverse listeners unless keep_host_header
                # is on, which the gateway turned on for its own listener only.
                flow.request.host_header = url.hostport(mode.scheme, *mode.address)
            return
        path = flow.request.path.split("?", 1)[0]
        self.holder.flows.open(flow, meta.FlowState(classify(flow.request.method, path), path))
