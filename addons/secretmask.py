"""Masks the injected upstream secret on the stored flow once it has been sent.

After this, `-w` dumps and the web UI hold `***` where the token was.
"""

from __future__ import annotations

from mitmproxy import http

from . import meta


def mask(flow: http.HTTPFlow) -> None:
    for name in flow.metadata.get(meta.SECRET_HEADERS, ()):
        if name in flow.request.headers:
            flow.request.headers[name] = meta.MASK


class SecretMask:
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        mask(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        mask(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        mask(flow)
