"""Loads the configuration, builds the gateway state and keeps the auth dir in sync."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from mitmproxy import ctx, exceptions
from mitmproxy.addonmanager import Loader
from mitmproxy.utils import asyncio_utils

from quotio_core.config import ConfigError, load_config
from quotio_core.gateway import Gateway
from quotio_core.admin.logs import install as install_logs

from .meta import GatewayHolder

log = logging.getLogger("quotio")


class GatewayCore:
    def __init__(self, holder: GatewayHolder):
        self.holder = holder
        self._watcher: asyncio.Task | None = None

    def load(self, loader: Loader) -> None:
        loader.add_option("quotio_config", str, "", "Config file (default $QUOTIO_CONFIG or $QUOTIO_CONFIG_DIR/config.yaml).")
        loader.add_option("quotio_auth_dir", str, "", "Auth dir override (default $QUOTIO_AUTH_DIR or auth-dir).")
        loader.add_option("quotio_host", str, "", "Gateway listen host override (default $QUOTIO_HOST or host).")
        loader.add_option("quotio_port", int, 0, "Gateway listen port override (default $QUOTIO_PORT or port).")
        loader.add_option("quotio_db", str, "", "Records database (default $QUOTIO_CONFIG_DIR/quotio.db).")
        loader.add_option("quotio_auth_scan_ms", int, 1000, "Milliseconds between auth dir scans.")
        loader.add_option("quotio_log_json", bool, True, "quotio's own log lines as JSON on stderr (secrets redacted).")

    def configure(self, updated: set[str]) -> None:
        if not any(name.startswith("quotio_") for name in updated):
            return
        if self.holder.gateway is not None and updated == {"quotio_auth_scan_ms"}:
            return
        o = ctx.options
        overrides = {
            "config_path": o.quotio_config,
            "auth_dir": o.quotio_auth_dir,
            "host": o.quotio_host,
            "port": o.quotio_port,
            "db_path": o.quotio_db,
        }
        try:
            config = load_config(overrides={k: v for k, v in overrides.items() if v})
        except ConfigError as e:
            raise exceptions.OptionsError(str(e)) from e
        # httpx logs every request URL at INFO, and some token APIs take the
        # token in the query string (iFlow's getUserInfo): keep those out.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
        if ctx.options.quotio_log_json:
            holder = self.holder
            install_logs(lambda: _known_secrets(holder.gateway), debug=config.debug)
        elif config.debug:
            log.setLevel(logging.DEBUG)
        old = self.holder.gateway
        gateway = Gateway(config)
        gateway.rescan()
        # An unwritable records database is logged and retried; it never stops serving.
        gateway.records.start()
        try:
            restored = gateway.restore_cooldowns()
        except (OSError, sqlite3.Error) as e:
            log.warning("quotio: cooldowns not restored from %s: %s", config.db_path, e)
            restored = 0
        self.holder.gateway = gateway
        if old is not None:
            old.records.close()
            asyncio_utils.create_task(old.aclose(), name="quotio close old gateway", keep_ref=True)
        log.info(
            "quotio: %d credentials (%s), %d cooldowns restored, config %s",
            len(gateway.credentials()),
            config.auth_dir,
            restored,
            config.config_path or "defaults",
        )

    def running(self) -> None:
        self._watcher = asyncio_utils.create_task(
            self._watch(), name="quotio auth dir watcher", keep_ref=True
        )

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(max(ctx.options.quotio_auth_scan_ms, 50) / 1000)
            gateway = self.holder.gateway
            if gateway is None:
                continue
            try:
                changes = await asyncio.to_thread(gateway.rescan)
            except OSError as e:
                log.warning("quotio: cannot scan auth dir: %s", e)
                continue
            if changes:
                log.info(
                    "quotio: auth dir changed (added %s, changed %s, removed %s)",
                    list(changes.added), list(changes.changed), list(changes.removed),
                )

    def done(self) -> None:
        if self._watcher:
            self._watcher.cancel()
        if self.holder.gateway is not None:
            self.holder.gateway.records.close()
            asyncio_utils.create_task(
                self.holder.gateway.aclose(), name="quotio close gateway", keep_ref=True
            )


def _known_secrets(gateway: Gateway | None) -> list[str]:
    if gateway is None:
        return []
    cfg = gateway.config.file
    tokens = [c.secret for c in gateway.credentials()]
    tokens += [str(c.data.get("refresh_token") or "") for c in gateway.credentials()]
    return tokens + list(cfg.api_keys) + [cfg.remote_management.secret_key]
