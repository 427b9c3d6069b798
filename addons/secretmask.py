"""Masks secrets on the stored flow once the request has been sent.

The injected upstream credential of a routed request, and the client's own
key on a request passed through to CLIProxyAPI. After this, `-w` dumps and
the web UI hold `***` where they were.
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
        if state is not None:
            meta.mask_secrets(flow, state)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._mask(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._mask(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._mask(flow)
