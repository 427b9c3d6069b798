"""Logins in progress: started by the CLI or a management route, finished by a
browser redirect, a device-code poll or an imported key, ending in an auth file.

A session is found by its `state`. It still answers after it finished (for
`get-auth-status` / `oauth/status` polls that come late) and is forgotten an
hour later. Callback listeners are opened per port when the first login on
that port starts and closed when the last one ends or times out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ...pool.authstore import AuthStore
from ...config import Config
from .. import canonical_provider, login_module
from .base import AuthCodeStart, DeviceStart, LoginContext, LoginError, SlowDown, logged_in, new_state
from .callback import CallbackServer

__all__ = ["LoginSession", "LoginSessions", "UnknownProvider"]

log = logging.getLogger(__name__)

Flow = Literal["auth-code", "device", "service-account"]
KEEP_FINISHED_SECONDS = 3600.0


class UnknownProvider(LoginError):
    def __init__(self, provider: str, flow: str | None = None):
        how = f" with {flow}" if flow else ""
        super().__init__(f"provider {provider!r} cannot log in{how}", "unknown_provider")


@dataclass
class LoginSession:
    state: str
    provider: str
    flow: Flow
    status: Literal["wait", "ok", "error"] = "wait"
    error: str = ""
    email: str = ""
    file: str = ""
    auth_url: str = ""
    redirect_uri: str = ""
    port: int = 0
    device: DeviceStart | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    pending: AuthCodeStart | None = field(default=None, repr=False)
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    task: asyncio.Task | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state,
            "provider": self.provider,
            "flow": self.flow,
            "status": self.status,
            "completed": self.status == "ok",
        }
        if self.error:
            out["error"] = self.error
        if self.email:
            out["email"] = self.email
        if self.file:
            out["file"] = self.file
        if self.auth_url:
            out["auth_url"] = self.auth_url
        if self.device is not None:
            out.update(self.device.public())
        return out


class LoginSessions:
    def __init__(
        self,
        config: Config,
        store: AuthStore,
        on_written: Callable[[], None] = lambda: None,
        *,
        timeout: float = 600.0,
        callback_host: str = "localhost",
        callback_ports: dict[str, int] | None = None,
    ):
        self.config = config
        self.store = store
        self._on_written = on_written
        self.timeout = timeout
        self.callback_host = callback_host
        self.callback_ports = dict(callback_ports or {})
        self._sessions: dict[str, LoginSession] = {}
        self._servers: dict[int, CallbackServer] = {}
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False, timeout=30.0)
        return self._http

    def _ctx(self, provider: str, redirect_uri: str = "", **options: Any) -> LoginContext:
        options = {
            "poll_seconds": self.config.file.oauth.poll_seconds,
            "header_defaults": self.config.headers_for(provider),
            **options,
        }
        return LoginContext(
            urls=self.config.upstreams.get(provider, {}), http=self._client(),
            redirect_uri=redirect_uri, options=options,
        )

    def get(self, state: str) -> LoginSession | None:
        self._forget_old()
        return self._sessions.get(state)

    def find_device(self, provider: str, device_code: str) -> LoginSession | None:
        for s in self._sessions.values():
            if s.provider == provider and s.device is not None and s.device.device_code == device_code:
                return s
        return None

    def _forget_old(self) -> None:
        now = time.time()
        for state, s in list(self._sessions.items()):
            if s.finished is not None and now - s.finished > KEEP_FINISHED_SECONDS:
                del self._sessions[state]

    @staticmethod
    def flows(provider: str) -> tuple[str, ...]:
        module = login_module(provider)
        return tuple(getattr(module, "FLOWS", ())) if module else ()

    # --- starting ----------------------------------------------------------------
    async def start(
        self, provider: str, flow: str | None = None, *, port: int | None = None, listen: bool = True, **options: Any
    ) -> LoginSession:
        """Begin a login; `flow` defaults to the provider's first one."""
        provider = canonical_provider(provider)
        flows = self.flows(provider)
        flow = flow or (flows[0] if flows else None)
        if not flows or flow not in flows or flow == "service-account":
            raise UnknownProvider(provider, flow)
        if flow == "device":
            return await self._start_device(provider, options)
        return await self._start_auth_code(provider, port, listen, options)

    async def _start_auth_code(
        self, provider: str, port: int | None, listen: bool, options: dict[str, Any]
    ) -> LoginSession:
        module = login_module(provider)
        port = port if port is not None else self.callback_ports.get(provider, module.CALLBACK_PORT)
        server = None
        if listen:
            server = await self._listener(port, module.CALLBACK_PATH)
            port = server.port
        redirect_uri = f"http://localhost:{port}{module.CALLBACK_PATH}"
        start = module.authorize(self._ctx(provider, redirect_uri, **options))
        session = LoginSession(
            state=start.state, provider=provider, flow="auth-code", auth_url=start.url,
            redirect_uri=redirect_uri, port=port if listen else 0, options=options, pending=start,
        )
        self._sessions[start.state] = session
        session.task = asyncio.create_task(self._expire(session), name=f"quotio login {provider}")
        return session

    async def _listener(self, port: int, path: str) -> CallbackServer:
        server = self._servers.get(port)
        if server is None or server.path != path:
            if server is not None:
                raise LoginError(f"port {port} is taken by another pending login", "port_busy")
            server = CallbackServer(self.callback_host, port, path, self._on_callback)
            try:
                await server.start()
            except OSError as e:
                raise LoginError(f"cannot listen for the login callback on port {port}: {e.strerror}", "port_busy") from e
            self._servers[server.port] = server
        return server

    async def _start_device(self, provider: str, options: dict[str, Any]) -> LoginSession:
        module = login_module(provider)
        ctx = self._ctx(provider, **options)
        device = await module.device_start(ctx)
        session = LoginSession(
            state=new_state(), provider=provider, flow="device", device=device, options=options,
            auth_url=device.verification_uri_complete or device.verification_uri,
        )
        self._sessions[session.state] = session
        session.task = asyncio.create_task(self._poll(session, ctx), name=f"quotio device login {provider}")
        return session

    async def import_service_account(self, provider: str, key: dict[str, Any], **options: Any) -> LoginSession:
        provider = canonical_provider(provider)
        if "service-account" not in self.flows(provider):
            raise UnknownProvider(provider, "service-account")
        data = await login_module(provider).import_service_account(self._ctx(provider, **options), key)
        session = LoginSession(state=new_state(), provider=provider, flow="service-account", options=options)
        self._sessions[session.state] = session
        await self._save(session, data)
        return session

    # --- finishing -----------------------------------------------------------------
    async def _on_callback(self, state: str, code: str, error: str) -> tuple[bool, str]:
        session = self._sessions.get(state)
        if session is None or session.flow != "auth-code" or session.status != "wait":
            return False, "This login link is unknown or has expired; start the login again."
        await self.complete(session, code, error)
        if session.status == "ok":
            return True, f"Logged in{(' as ' + session.email) if session.email else ''}. You can close this tab."
        return False, session.error

    async def complete(self, session: LoginSession, code: str, error: str = "") -> LoginSession:
        """Finish an authorization-code login with what the redirect carried."""
        if session.status != "wait":
            return session
        if error or not code:
            self._finish(session, error=f"the provider refused the login: {error or 'no code returned'}")
            return session
        module = login_module(session.provider)
        ctx = self._ctx(session.provider, session.redirect_uri, **session.options)
        try:
            data = await module.exchange(ctx, session.pending, code)
            await self._save(session, data)
        except (LoginError, httpx.HTTPError, OSError, ValueError) as e:
            self._finish(session, error=str(e) or type(e).__name__)
        return session

    async def _poll(self, session: LoginSession, ctx: LoginContext) -> None:
        module = login_module(session.provider)
        device = session.device
        interval = max(device.interval, 0.05)
        deadline = time.monotonic() + min(device.expires_in or self.timeout, self.timeout)
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(interval)
                try:
                    data = await module.device_poll(ctx, device)
                except SlowDown as e:
                    interval = max(e.interval, interval)
                    continue
                if data is not None:
                    await self._save(session, data)
                    return
            self._finish(session, error="the device code expired before the login was completed")
        except (LoginError, httpx.HTTPError, OSError, ValueError) as e:
            self._finish(session, error=str(e) or type(e).__name__)

    async def _expire(self, session: LoginSession) -> None:
        try:
            await asyncio.wait_for(session.done.wait(), self.timeout)
        except TimeoutError:
            self._finish(session, error=f"no browser came back within {int(self.timeout)}s")

    async def _save(self, session: LoginSession, data: dict[str, Any]) -> None:
        data = logged_in(data)
        name = login_module(session.provider).file_name(data)
        await asyncio.to_thread(self.store.write, name, data)
        self._on_written()
        session.file = name
        session.email = str(data.get("email") or data.get("username") or "")
        self._finish(session)
        log.info("quotio: %s login complete, wrote %s", session.provider, name)

    def _finish(self, session: LoginSession, error: str = "") -> None:
        if session.status != "wait":
            return
        session.status = "error" if error else "ok"
        session.error = error
        session.finished = time.time()
        session.pending = None  # the PKCE verifier is not needed any more
        session.done.set()
        if session.task is not None and session.task is not asyncio.current_task():
            session.task.cancel()
        self._release(session.port)

    def _release(self, port: int) -> None:
        if not port or port not in self._servers:
            return
        if any(s.port == port and s.status == "wait" for s in self._sessions.values()):
            return
        server = self._servers.pop(port)
        asyncio.get_running_loop().create_task(server.close())

    def cancel(self, state: str) -> bool:
        session = self._sessions.get(state)
        if session is None or session.status != "wait":
            return False
        self._finish(session, error="cancelled")
        return True

    async def wait(self, session: LoginSession) -> LoginSession:
        await session.done.wait()
        return session

    async def aclose(self) -> None:
        for s in list(self._sessions.values()):
            if s.status == "wait":
                self._finish(s, error="the gateway stopped")
        for server in list(self._servers.values()):
            await server.close()
        self._servers.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
