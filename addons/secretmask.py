"""Masks the injected upstream secret on the stored flow once it has been sent.

After this, `-w` dumps and the web UI hold `***` where the token was.
"""

from __future__ import annotations

from mitmproxy import http

from . import meta
from .core import GatewayHolder


class SecretMask:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def _mask(self, flow: http.HTTPFlow) -> None:
        state = self.holder.flows.get(flow)
        if state is None or state.plan is None:
            return
        for name in state.plan.upstream.secret_headers:
            if name in flow.request.headers:
                flow.request.headers[name] = meta.MASK

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._mask(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._mask(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._mask(flow)
