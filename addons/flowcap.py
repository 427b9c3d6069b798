"""Keeps mitmweb's flow list bounded (`web-max-flows`, 1,000 by default).

mitmweb's view holds every flow, bodies included, for as long as it runs:
a day of agent traffic would exhaust memory. Once the list is over the
limit, the oldest finished flows leave it, whichever listener they came
from. mitmdump has no view, and this does nothing there.
"""

from __future__ import annotations

import itertools

from mitmproxy import ctx, flow

from .meta import GatewayHolder


class FlowCap:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder

    def _trim(self) -> None:
        gateway = self.holder.gateway
        view = ctx.master.addons.get("view")
        if gateway is None or view is None:
            return
        limit = gateway.config.file.web_max_flows
        over = view.store_count() - limit
        if limit <= 0 or over <= 0:
            return
        # The store keeps insertion order: the oldest come first. A flow
        # still in flight stays (removing it would kill it).
        store = getattr(view, "_store", {})
        oldest = [f for f in itertools.islice(store.values(), over + 16) if not f.live][:over]
        for f in oldest:
            view.remove([f])  # one at a time: a list logs an alert per call

    def response(self, f: flow.Flow) -> None:
        self._trim()

    def error(self, f: flow.Flow) -> None:
        self._trim()
