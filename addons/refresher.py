"""Renews OAuth tokens in the background before they expire.

Every `oauth.refresh-check-seconds` it asks the token keeper which
credentials are within their provider's lead (Claude 4 h, Codex 5 days, …)
and refreshes those; a failed refresh waits `oauth.refresh-retry-seconds`.
Requests never wait for this loop: an expired token is refreshed on use too.
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy.utils import asyncio_utils

from .meta import GatewayHolder

log = logging.getLogger("quotio")


class Refresher:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder
        self._task: asyncio.Task | None = None

    def running(self) -> None:
        self._task = asyncio_utils.create_task(self._loop(), name="quotio token refresher", keep_ref=True)

    async def _loop(self) -> None:
        while True:
            gateway = self.holder.gateway
            interval = gateway.config.file.oauth.refresh_check_seconds if gateway else 5.0
            await asyncio.sleep(interval)
            gateway = self.holder.gateway
            if gateway is None:
                continue
            try:
                refreshed = await gateway.tokens.refresh_due()
            except Exception:  # the loop must outlive any one bad credential
                log.exception("quotio: background refresh failed")
                continue
            if refreshed:
                log.info("quotio: refreshed ahead of expiry: %s", ", ".join(refreshed))

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()
