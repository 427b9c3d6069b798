"""Management routes for logging in: the seed's `/oauth/*` and CLIProxyAPI's names.

Both sets drive the same login sessions (quotio_core.oauth.sessions), so a
login started with `GET /anthropic-auth-url` can be watched with
`GET /oauth/status` and the other way round. Nothing returned holds a token.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..pool.authstore import auth_file_name
from ..pool.credentials import CredentialError, credential_from_auth_file
from .facade import GatewayView
from ..providers.login import LoginError
from ..providers import auth_url_names, canonical_provider, login_module, login_providers
from ..providers.login.keeper import RefreshFailed
from .replies import Reply

__all__ = ["LoginRoutes"]

def _err(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


# CLIProxyAPI's `<name>-auth-url` routes, from every provider's spec.
AUTH_URL_NAMES = auth_url_names()

Handler = Callable[..., Awaitable[Any]]


class LoginRoutes:
    def __init__(self, gateway: GatewayView):
        self.gw = gateway

    def routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        names = "|".join(sorted(AUTH_URL_NAMES, key=len, reverse=True))
        return [
            ("POST", re.compile(r"/oauth/start"), self.start),
            ("GET", re.compile(r"/oauth/status"), self.status),
            ("POST", re.compile(r"/oauth/device-start"), self.device_start),
            ("POST", re.compile(r"/oauth/device-poll"), self.device_poll),
            ("POST", re.compile(r"/oauth/import-service-account"), self.import_service_account),
            ("POST", re.compile(r"/oauth/refresh/(?P<provider>[^/]+)"), self.refresh),
            ("GET", re.compile(r"/oauth/providers"), self.providers),
            ("POST", re.compile(r"/oauth/cancel"), self.cancel),
            ("GET", re.compile(rf"/(?P<name>{names})-auth-url"), self.auth_url),
            ("GET", re.compile(r"/get-auth-status"), self.auth_status),
            ("DELETE", re.compile(r"/oauth-session"), self.cancel),
            ("POST", re.compile(r"/oauth-callback"), self.oauth_callback),
            ("GET", re.compile(r"/oauth-callback"), self.oauth_callback),
            ("GET", re.compile(r"/auth-files"), self.auth_files),
            ("DELETE", re.compile(r"/auth-files"), self.delete_auth_files),
            ("POST", re.compile(r"/auth-files"), self.upload_auth_file),
            ("POST", re.compile(r"/vertex/import"), self.vertex_import),
        ]

    def _r(self, status: int, body: Any):
        return Reply(status, body)

    # --- the seed's routes -----------------------------------------------------
    async def _begin(self, provider: str, flow: str | None, options: dict[str, Any]):
        provider = canonical_provider(provider)
        if login_module(provider) is None:
            return None, self._r(400, _err(f"unknown provider {provider!r}", providers=login_providers()))
        try:
            session = await self.gw.logins.start(provider, flow, **options)
        except LoginError as e:
            status = 409 if e.code == "port_busy" else 400 if e.code == "unknown_provider" else 502
            return None, self._r(status, _err(str(e), code=e.code))
        return session, None

    async def start(self, query: Mapping[str, str], body: bytes):
        try:
            data = _json_body(body)
        except ValueError as e:
            return self._r(400, _err(f"body must be JSON like {{\"provider\": \"claude\"}}: {e}"))
        provider = str(data.get("provider") or query.get("provider") or "")
        options = {"project_id": data["project_id"]} if data.get("project_id") else {}
        session, refusal = await self._begin(provider, data.get("flow"), options)
        if refusal:
            return refusal
        return self._r(200, {**session.public(), "auth_url": session.auth_url, "state": session.state})

    async def status(self, query: Mapping[str, str]):
        session = self.gw.logins.get(query.get("state", ""))
        if session is None:
            return self._r(404, {"completed": False, "status": "error", "error": "unknown or expired state"})
        return self._r(200, session.public())

    async def device_start(self, query: Mapping[str, str], body: bytes):
        try:
            data = _json_body(body)
        except ValueError as e:
            return self._r(400, _err(str(e)))
        session, refusal = await self._begin(str(data.get("provider") or ""), "device", {})
        if refusal:
            return refusal
        return self._r(200, {**session.device.public(), "state": session.state, "provider": session.provider})

    async def device_poll(self, query: Mapping[str, str], body: bytes):
        try:
            data = _json_body(body)
        except ValueError as e:
            return self._r(400, _err(str(e)))
        session = None
        if data.get("state"):
            session = self.gw.logins.get(str(data["state"]))
        elif data.get("device_code"):
            provider = canonical_provider(str(data.get("provider") or ""))
            session = self.gw.logins.find_device(provider, str(data["device_code"]))
        if session is None:
            return self._r(404, {"status": "error", "error": "unknown device code or state"})
        if session.status == "wait":
            return self._r(200, {"status": "pending", "provider": session.provider})
        if session.status == "ok":
            return self._r(
                200, {"status": "completed", "provider": session.provider, "email": session.email, "file": session.file}
            )
        expired = "expired" in session.error
        return self._r(200, {"status": "expired" if expired else "error", "error": session.error})

    async def import_service_account(self, query: Mapping[str, str], body: bytes):
        try:
            data = _json_body(body)
        except ValueError as e:
            return self._r(400, _err(f"body must be JSON: {e}"))
        key = data.get("key_file") or data.get("service_account") or data.get("key")
        if isinstance(key, str):
            try:
                key = json.loads(key)
            except ValueError:
                return self._r(400, _err("key_file is not valid JSON"))
        if not isinstance(key, dict):
            return self._r(400, _err("expected the service-account key as key_file (JSON object or string)"))
        options = {k: data[k] for k in ("location",) if data.get(k)}
        return await self._import(str(data.get("provider") or "vertex"), key, options)

    async def _import(self, provider: str, key: dict[str, Any], options: dict[str, Any]):
        try:
            session = await self.gw.logins.import_service_account(provider, key, **options)
        except LoginError as e:
            return self._r(400, _err(str(e), code=e.code))
        cred = self.gw.store.get(session.file)
        project = cred.data.get("project_id") if cred else None
        return self._r(
            200,
            {"success": True, "status": "ok", "provider": session.provider, "email": session.email,
             "project_id": project, "file": session.file},
        )

    async def refresh(self, query: Mapping[str, str], body: bytes, provider: str):
        provider = canonical_provider(provider)
        try:
            data = _json_body(body)
        except ValueError as e:
            return self._r(400, _err(str(e)))
        wanted = data.get("id") or query.get("id")
        creds = [
            c for c in self.gw.store.credentials
            if c.provider == provider and (wanted is None or c.id == wanted)
        ]
        if not creds:
            return self._r(404, _err(f"no {provider} auth file{' ' + repr(wanted) if wanted else ''}"))
        refreshed, errors = [], []
        for cred in creds:
            try:
                if self.gw.tokens.refreshable(cred):
                    fresh = await self.gw.tokens.refresh(cred, force=True)
                elif self.gw.tokens.has_bearer(cred):
                    self.gw.tokens.invalidate(cred.id)
                    await self.gw.tokens.bearer(cred)
                    fresh = cred
                else:
                    errors.append({"id": cred.id, "error": "this credential has nothing to refresh"})
                    continue
            except RefreshFailed as e:
                errors.append({"id": cred.id, "error": str(e), "needs_login": e.needs_login})
                continue
            refreshed.append(
                {"id": fresh.id, "email": fresh.email,
                 "expires_at": fresh.expires_at.isoformat() if fresh.expires_at else None}
            )
        first = refreshed[0] if refreshed else {}
        return self._r(
            200 if refreshed else 502,
            {"success": bool(refreshed), "provider": provider, "email": first.get("email"),
             "expires_at": first.get("expires_at"), "refreshed": refreshed, "errors": errors},
        )

    async def providers(self, query: Mapping[str, str]):
        flows = {p: self.gw.logins.flows(p) for p in login_providers()}
        return self._r(
            200,
            {
                "oauth": [p for p, f in flows.items() if "auth-code" in f],
                "device_code": [p for p, f in flows.items() if "device" in f],
                "service_account": [p for p, f in flows.items() if "service-account" in f],
                "all": list(flows),
            },
        )

    async def cancel(self, query: Mapping[str, str], body: bytes = b""):
        try:
            state = str(_json_body(body).get("state") or query.get("state") or "")
        except ValueError:
            state = query.get("state", "")
        if not self.gw.logins.cancel(state):
            return self._r(404, _err("no pending login with that state"))
        return self._r(200, {"status": "ok", "state": state})

    # --- CLIProxyAPI's names -------------------------------------------------------
    async def auth_url(self, query: Mapping[str, str], name: str):
        provider = canonical_provider(name)
        options = {"project_id": query["project_id"]} if query.get("project_id") else {}
        session, refusal = await self._begin(provider, None, options)
        if refusal:
            body = refusal.body
            return self._r(refusal.status, {"status": "error", "error": body.get("error")})
        out = {"status": "ok", "url": session.auth_url, "state": session.state}
        if session.device is not None:
            out.update({"user_code": session.device.user_code, "verification_uri": session.device.verification_uri})
        return self._r(200, out)

    async def auth_status(self, query: Mapping[str, str]):
        session = self.gw.logins.get(query.get("state", ""))
        if session is None:
            return self._r(200, {"status": "error", "error": "unknown or expired state"})
        out = {"status": session.status}
        if session.error:
            out["error"] = session.error
        return self._r(200, out)

    async def oauth_callback(self, query: Mapping[str, str], body: bytes = b""):
        """A redirect URL pasted by a user whose browser could not reach the listener."""
        try:
            data = {**query, **_json_body(body)}
        except ValueError as e:
            return self._r(400, _err(str(e)))
        if data.get("redirect_url"):
            data = {**dict(parse_qsl(urlsplit(str(data["redirect_url"])).query)), **data}
        session = self.gw.logins.get(str(data.get("state") or ""))
        if session is None or session.flow != "auth-code":
            return self._r(404, {"status": "error", "error": "unknown or expired state"})
        await self.gw.logins.complete(session, str(data.get("code") or ""), str(data.get("error") or ""))
        if session.status == "ok":
            return self._r(200, {"status": "ok", "email": session.email, "file": session.file})
        return self._r(400, {"status": "error", "error": session.error})

    def _file_entry(self, cred) -> dict[str, Any]:
        path = self.gw.config.auth_dir / cred.id
        try:
            st = path.stat()
            size, mtime = st.st_size, st.st_mtime
        except OSError:
            size, mtime = 0, None
        return {
            "id": cred.id,
            "name": cred.id,
            "type": cred.provider,
            "provider": cred.provider,
            "email": cred.email,
            "label": cred.label,
            "status": cred.status,
            "status_message": cred.data.get("last_error") or "",
            "disabled": cred.disabled,
            "unavailable": cred.status != "ready",
            "source": "file",
            "size": size,
            "modtime": datetime.fromtimestamp(mtime, UTC).isoformat() if mtime else None,
            "last_refresh": cred.data.get("last_refresh"),
            "expires_at": cred.expires_at.isoformat() if cred.expires_at else None,
        }

    async def auth_files(self, query: Mapping[str, str]):
        creds = self.gw.store.credentials
        files = await asyncio.to_thread(lambda: [self._file_entry(c) for c in creds])
        return self._r(200, {"files": files})

    async def delete_auth_files(self, query: Mapping[str, str]):
        if query.get("all") in ("true", "1"):
            names = [c.id for c in self.gw.store.credentials]
        elif query.get("name"):
            try:
                path = self.gw.store.path_for(query["name"])
            except ValueError as e:
                return self._r(400, {"status": "error", "error": f"bad file name: {e}"})
            names = [path.name]
            if self.gw.store.get(path.name) is None and not path.is_file():
                return self._r(404, {"status": "error", "error": f"no auth file {path.name!r}"})
        else:
            return self._r(400, {"status": "error", "error": "name the file (?name=) or pass ?all=true"})
        for name in names:
            await asyncio.to_thread(self.gw.store.remove, name)
        self.gw.rebuild_router()
        return self._r(200, {"status": "ok", "deleted": len(names)})

    async def upload_auth_file(self, query: Mapping[str, str], body: bytes):
        try:
            name = auth_file_name(query.get("name", ""))
        except ValueError as e:
            return self._r(400, {"status": "error", "error": f"pass the file name as ?name=<file>.json ({e})"})
        try:
            data = json.loads(body)
            credential_from_auth_file(name, data, self.gw.config)
        except (ValueError, CredentialError) as e:
            return self._r(400, {"status": "error", "error": f"not a valid auth file: {e}"})
        await asyncio.to_thread(self.gw.store.write, name, data)
        self.gw.rebuild_router()
        return self._r(200, {"status": "ok", "name": name})

    async def vertex_import(self, query: Mapping[str, str], body: bytes):
        try:
            key = json.loads(body)
        except ValueError:
            return self._r(400, {"status": "error", "error": "expected the service-account key JSON"})
        if isinstance(key, dict) and isinstance(key.get("key_file"), (dict, str)):
            key = key["key_file"] if isinstance(key["key_file"], dict) else json.loads(key["key_file"])
        if not isinstance(key, dict):
            return self._r(400, {"status": "error", "error": "expected the service-account key JSON object"})
        options = {"location": query["location"]} if query.get("location") else {}
        reply = await self._import("vertex", key, options)
        if reply.status != 200:
            return self._r(reply.status, {"status": "error", "error": reply.body.get("error")})
        return self._r(200, {**reply.body, "auth-file": reply.body["file"]})
