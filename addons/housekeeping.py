"""Background upkeep: quota reports kept fresh, old request records pruned.

Quotas are fetched for every account whose report is older than
`quota-refresh-seconds` (0: only on demand); records older than `usage-retention-days` are
deleted once at start and then hourly, so the database stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time

from mitmproxy.utils import asyncio_utils

from .meta import GatewayHolder

log = logging.getLogger("quotio")

PRUNE_EVERY_SECONDS = 3600.0
# How often to look for stale quota reports; each report has its own age.
QUOTA_TICK_SECONDS = 5.0


class Housekeeping:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder
        self._tasks: list[asyncio.Task] = []

    def running(self) -> None:
        self._tasks = [
            asyncio_utils.create_task(self._quotas(), name="quotio quota refresher", keep_ref=True),
            asyncio_utils.create_task(self._prune(), name="quotio record pruner", keep_ref=True),
        ]

    async def _quotas(self) -> None:
        while True:
            gateway = self.holder.gateway
            if gateway is not None and gateway.quotas.interval > 0:
                try:
                    await gateway.quotas.refresh()
                except Exception:  # one bad round must not end the loop
                    log.exception("quotio: quota refresh round failed")
            interval = gateway.quotas.interval if gateway else 0
            tick = min(QUOTA_TICK_SECONDS, interval) if interval > 0 else QUOTA_TICK_SECONDS
            await asyncio.sleep(tick)

    async def _prune(self) -> None:
        while True:
            gateway = self.holder.gateway
            days = gateway.config.file.usage_retention_days if gateway else 0
            if gateway is not None and days > 0:
                try:
                    gone = await asyncio.to_thread(gateway.records.prune, time.time() - days * 86400)
                except Exception:  # a locked database: try again next round
                    log.exception("quotio: pruning records failed")
                else:
                    if gone:
                        log.info("quotio: pruned %d records older than %g days", gone, days)
            await asyncio.sleep(PRUNE_EVERY_SECONDS)

    def done(self) -> None:
        for task in self._tasks:
            task.cancel()
