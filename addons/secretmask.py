"""Keeps secrets off everything that shows or stores a flow.

The injected upstream credential of a routed request, and the client's own
key on a request passed through to CLIProxyAPI, are replaced by `***` on the
flow once the request has been sent (the response headers, or the error),
before mitmproxy's own `save` (`-w`) and `dumper` addons see the flow: the
gateway's script runs ahead of both.

A flow must carry its credential while the request is on its way, and
mitmweb shows flows while they are in flight. So under mitmweb the flow's
web form is masked too: every secret header and query parameter of a flow
on the gateway's listener reads `***` in the UI and its API at every moment.
"""

from __future__ import annotations

import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mitmproxy import ctx, http

from quotio_core.providers import CLIENT_SECRET_HEADERS, CLIENT_SECRET_PARAMS

from . import meta
from .meta import GatewayHolder

# Every header a credential travels in, either way (upstream, client, management).
SECRET_HEADERS = frozenset({*CLIENT_SECRET_HEADERS, "x-management-key", "proxy-authorization", "cookie"})


class SecretMask:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder
        self._unpatch = None

    def running(self) -> None:
        self._unpatch = _mask_web_view(self.holder)

    def done(self) -> None:
        if self._unpatch is not None:
            self._unpatch()

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


def _mask_web_view(holder: GatewayHolder):
    """Wrap mitmweb's flow serializer (every UI update and API answer goes through it)."""
    web = sys.modules.get("mitmproxy.tools.web.master")
    if web is None or not isinstance(ctx.master, web.WebMaster):
        return None
    from mitmproxy.tools.web import app

    original = app.flow_to_json

    def masked(flow):
        data = original(flow)
        request = data.get("request")
        if request is not None and flow.client_conn.proxy_mode == holder.listen_mode:
            state = holder.flows.get(flow)
            names = SECRET_HEADERS | set(state.secret_headers if state is not None else ())
            request["headers"] = tuple((k, meta.MASK if k.lower() in names else v) for k, v in request["headers"])
            request["path"] = _masked_path(request["path"])
        return data

    app.flow_to_json = masked

    def restore() -> None:
        app.flow_to_json = original

    return restore


def _masked_path(path: str) -> str:
    parts = urlsplit(path)
    if not parts.query:
        return path
    query = [(k, meta.MASK if k in CLIENT_SECRET_PARAMS else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query)))
