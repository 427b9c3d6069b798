"""The `/v0/management` routes and the health probes, answered by the gateway itself.

Handlers take plain values and return (status, JSON-able body); nothing they
return holds a token or key.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..clientauth import is_loopback
from .lockout import KeyLockout
from .replies import Reply
from .state import AdminState
from .facade import GatewayView
from .oauth import LoginRoutes
from .usage import UsageRoutes

__all__ = ["KeyLockout", "Management", "Reply", "management_access"]

VERSION = "0.1.0"


def management_access(
    secret: str, allow_remote: bool, headers: Mapping[str, str], client_ip: str, lockout: KeyLockout | None = None
) -> Reply | None:
    """None when the caller may use management routes, else the refusal."""
    local = is_loopback(client_ip)
    if not secret:
        if local:
            return None
        return Reply(403, _err("management is loopback-only until remote-management.secret-key is set"))
    if not local and not allow_remote:
        return Reply(403, _err("remote management is disabled (remote-management.allow-remote)"))
    if lockout is not None and (left := lockout.remaining(client_ip)):
        minutes = max(1, round(left / 60))
        return Reply(403, _err(f"too many wrong management keys from {client_ip}; try again in {minutes} min"))
    auth = headers.get("authorization", "")
    presented = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("x-management-key", "")
    if not presented:
        return Reply(401, _err("missing management key (Authorization: Bearer or X-Management-Key)"))
    if not hmac.compare_digest(presented.encode(), secret.encode()):
        if lockout is not None:
            lockout.failure(client_ip)
        return Reply(401, _err("invalid management key"))
    if lockout is not None:
        lockout.success(client_ip)
    return None


def _err(message: str) -> dict[str, Any]:
    return {"error": message}


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def _log_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record in the seed's log shape, with our extra fields under `metadata`."""
    return {
        "requestId": row["request_id"],
        "timestamp": _iso(row["ts"]),
        "method": row["method"],
        "path": row["route"],
        "status": row["status"],
        "durationMs": row["latency_ms"],
        "provider": row["provider"],
        "model": row["model_requested"],
        "error": row["error"],
        "metadata": {
            "client_format": row["client_format"],
            "credential_id": row["credential_id"],
            "client_key_id": row["client_key_id"],
            "model_sent": row["model_sent"],
            "stream": bool(row["stream"]),
            "ttfb_ms": row["ttfb_ms"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "cached_tokens": row["cached_tokens"],
            "reasoning_tokens": row["reasoning_tokens"],
            "attempt": row.get("attempt") or 1,
        },
    }


Handler = Callable[..., Awaitable[Reply]]


class Management:
    def __init__(self, gateway: GatewayView, admin: AdminState):
        self.gw = gateway
        self.admin = admin
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/health"), self.health),
            ("GET", re.compile(r"/ready"), self.ready),
            ("GET", re.compile(r"/live"), self.live),
            ("GET", re.compile(r"/auth"), self.list_auth),
            ("GET", re.compile(r"/auth/(?P<provider>[^/]+)"), self.list_auth),
            ("DELETE", re.compile(r"/auth/provider/(?P<provider>[^/]+)"), self.delete_provider),
            ("DELETE", re.compile(r"/auth/(?P<cred_id>[^/]+)"), self.delete_auth),
            ("GET", re.compile(r"/logs"), self.logs),
            ("GET", re.compile(r"/logs/provider/(?P<provider>[^/]+)"), self.logs),
            ("GET", re.compile(r"/logs/status/(?P<status>2xx|3xx|4xx|5xx|errors)"), self.logs),
            ("GET", re.compile(r"/logs/(?P<request_id>[^/]+)"), self.log_by_id),
            ("DELETE", re.compile(r"/logs"), self.clear_logs),
            ("GET", re.compile(r"/pool"), self.pool),
            ("POST", re.compile(r"/reset-quota"), self.reset_quota),
            *LoginRoutes(gateway).routes(),
            *UsageRoutes(gateway, admin.metrics).routes(),
        ]

    async def handle(
        self, method: str, sub_path: str, query: Mapping[str, str], body: bytes = b""
    ) -> Reply:
        """`sub_path` is the path after /v0/management, e.g. "/auth/claude"."""
        path = sub_path.rstrip("/") or "/"
        allowed = set()
        for verb, pattern, handler in self._routes:
            if m := pattern.fullmatch(path):
                if verb == method or (verb == "GET" and method == "HEAD"):
                    kwargs = {"body": body} if verb in ("POST", "PUT", "PATCH") else {}
                    return await handler(query=query, **kwargs, **m.groupdict())
                allowed.add(verb)
        if allowed:
            return Reply(405, _err(f"method {method} not allowed here; use {', '.join(sorted(allowed))}"))
        return Reply(404, _err(f"unknown management route {path}"))

    # --- health -----------------------------------------------------------
    def _counts(self) -> dict[str, Any]:
        creds = self.gw.credentials()
        by_provider: dict[str, int] = {}
        for c in creds:
            by_provider[c.provider] = by_provider.get(c.provider, 0) + 1
        ready = sum(1 for c in creds if c.status == "ready")
        return {"total": len(creds), "ready": ready, "by_provider": by_provider}

    async def health(self, query: Mapping[str, str]) -> Reply:
        return Reply(
            200,
            {
                "status": "ok",
                "version": VERSION,
                "started_at": _iso(self.gw.started_at),
                "uptime_seconds": round(time.time() - self.gw.started_at, 3),
                "credentials": self._counts(),
                "records": await asyncio.to_thread(self._record_count),
                "records_store": self.gw.records.status(),
                "pool": self._pool(),
            },
        )

    def _record_count(self) -> int | None:
        try:
            return self.gw.records.count()
        except (OSError, sqlite3.Error):
            return None  # the store's status says why

    async def ready(self, query: Mapping[str, str]) -> Reply:
        return Reply(200, {"ready": True, "credentials": self._counts()["ready"]})

    async def live(self, query: Mapping[str, str]) -> Reply:
        return Reply(200, {"alive": True})

    # --- credentials --------------------------------------------------------
    def _auth_entry(self, cred) -> dict[str, Any]:
        entry = cred.public()
        entry["name"] = cred.label
        path = self.gw.config.auth_dir / cred.id
        if cred.source == "file" and path.exists():
            st = path.stat()
            entry["created_at"] = _iso(st.st_ctime)
            entry["updated_at"] = _iso(st.st_mtime)
        else:
            entry["created_at"] = entry["updated_at"] = _iso(self.gw.started_at)
        return entry

    async def list_auth(self, query: Mapping[str, str], provider: str | None = None) -> Reply:
        creds = [c for c in self.gw.credentials() if provider in (None, c.provider)]
        # _auth_entry stats the files: keep that disk I/O off the event loop.
        entries = await asyncio.to_thread(lambda: [self._auth_entry(c) for c in creds])
        return Reply(200, {"auth_files": entries})

    async def delete_auth(self, query: Mapping[str, str], cred_id: str) -> Reply:
        cred = next((c for c in self.gw.credentials() if c.id == cred_id), None)
        if cred is None:
            return Reply(404, _err(f"no credential {cred_id!r}"))
        if cred.source != "file":
            return Reply(400, _err(f"{cred_id} comes from the config file; remove it there"))
        moved = await asyncio.to_thread(self._remove, cred_id)
        return Reply(200, {"success": True, "id": cred_id, "moved_to": moved})

    async def delete_provider(self, query: Mapping[str, str], provider: str) -> Reply:
        ids = [c.id for c in self.gw.store.credentials if c.provider == provider]
        moved = [await asyncio.to_thread(self._remove, i) for i in ids]
        return Reply(200, {"success": True, "provider": provider, "removed": ids, "moved_to": moved})

    def _remove(self, cred_id: str) -> str:
        dest = self.gw.store.remove(cred_id)
        self.gw.rebuild_router()
        return str(dest.relative_to(self.gw.config.auth_dir))

    # --- logs ---------------------------------------------------------------
    async def logs(
        self, query: Mapping[str, str], provider: str | None = None, status: str | None = None
    ) -> Reply:
        try:
            limit = int(query.get("limit", 100))
        except ValueError:
            return Reply(400, _err("limit must be an integer"))
        rows = await asyncio.to_thread(
            self.gw.records.query, limit=max(1, limit), provider=provider, status_class=status
        )
        body: dict[str, Any] = {"logs": [_log_entry(r) for r in rows], "count": len(rows)}
        if provider:
            body["provider"] = provider
        if status:
            body["range"] = status
        return Reply(200, body)

    async def log_by_id(self, query: Mapping[str, str], request_id: str) -> Reply:
        rows = await asyncio.to_thread(self.gw.records.query, limit=1, request_id=request_id)
        if not rows:
            return Reply(404, _err(f"no log entry {request_id!r}"))
        return Reply(200, _log_entry(rows[0]))

    # --- pool ---------------------------------------------------------------
    def _pool(self) -> dict[str, Any]:
        now = time.time()
        return {
            "cooldowns": [
                {
                    "credential_id": c.cred_id,
                    "model": None if c.model == "*" else c.model,
                    "scope": c.scope,
                    "status": c.status,
                    "reason": c.reason,
                    "reset_time": _iso(c.until),
                    "reset_seconds": round(c.remaining(now), 3),
                }
                for c in self.gw.cooldowns.entries()
            ],
            "breakers": self.gw.breakers.snapshot(),
            # Addresses refused after too many wrong management keys.
            "management_lockouts": self.admin.lockout.snapshot(),
        }

    async def pool(self, query: Mapping[str, str]) -> Reply:
        return Reply(200, self._pool())

    async def reset_quota(self, query: Mapping[str, str], body: bytes) -> Reply:
        """CLIProxyAPI's reset-quota: by credential (`auth_index`, `id` or `credential`), or all."""
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return Reply(400, _err("body must be JSON, e.g. {\"id\": \"claude-me@example.com.json\"}"))
        if not isinstance(data, dict):
            return Reply(400, _err("body must be a JSON object"))
        target = data.get("id") or data.get("credential") or data.get("auth_index") or query.get("id")
        if target is not None and not any(c.id == str(target) for c in self.gw.credentials()):
            return Reply(404, _err(f"no credential {target!r}"))
        cleared = self.gw.cooldowns.reset(str(target) if target is not None else None)
        for key in ([str(target)] if target is not None else list(self.gw.breakers.snapshot())):
            self.gw.breakers.success(key)
        return Reply(200, {"success": True, "cleared": cleared, "credential": target})

    async def clear_logs(self, query: Mapping[str, str]) -> Reply:
        deleted = await asyncio.to_thread(self.gw.records.clear)
        return Reply(200, {"success": True, "deleted": deleted})
