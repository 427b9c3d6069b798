"""The gateway's runtime state, built from one Config and shared by the addons.

Nothing here imports mitmproxy: the addons hand in plain values (method,
path, headers, body) and apply what comes back to the flow.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import providers
from .authstore import AuthStore, ScanResult
from .config import Config
from .credentials import Credential, credentials_from_config
from .errors import BadRequest, GatewayError, ModelUnavailable, UnsupportedRoute
from .providers import Call, UpstreamRequest
from .proxyurl import ProxyURL, resolve_proxy
from .records import RecordStore
from .routes import ApiRoute
from .routing import ModelNotFound, ModelRouter
from .selector import Selector

__all__ = ["Gateway", "Plan"]


@dataclass(frozen=True)
class Plan:
    """Where one client request goes, and as what."""

    credential: Credential
    provider_format: str
    model_requested: str
    model_sent: str
    stream: bool
    upstream: UpstreamRequest
    body: bytes | None  # a rewritten body, or None to send the client's unchanged
    proxy: ProxyURL | None = None  # an HTTP(S) proxy to reach the upstream through


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"request body is not valid JSON: {e}") from e
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


class Gateway:
    def __init__(self, config: Config):
        self.config = config
        self.started_at = time.time()
        self.store = AuthStore(config)
        self.config_credentials = credentials_from_config(config)
        self.selector = Selector(config.file.routing.strategy)
        self.records = RecordStore(config.db_path)
        self.router = ModelRouter(self.config_credentials, providers.servable)

    def credentials(self) -> list[Credential]:
        return self.config_credentials + self.store.credentials

    def rescan(self) -> ScanResult:
        """Re-read the auth dir (blocking file I/O) and rebuild routing if it changed."""
        result = self.store.scan()
        if result:
            self.rebuild_router()
        return result

    def rebuild_router(self) -> None:
        self.router = ModelRouter(self.credentials(), providers.servable)

    def plan(
        self,
        route: ApiRoute,
        raw_body: bytes,
        headers: Mapping[str, str],
        query: Mapping[str, str],
    ) -> Plan:
        body = parse_body(raw_body)
        model = route.model or body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("the request names no model", "missing_model")
        try:
            found = self.router.resolve(model)
        except ModelNotFound as e:
            raise ModelUnavailable(str(e)) from e
        same_format = [
            (c, m) for c, m in found.candidates if providers.format_of(c) == route.fmt
        ]
        if not same_format:
            speaks = sorted({providers.format_of(c) for c, _ in found.candidates})
            raise UnsupportedRoute(
                400,
                "format_not_supported",
                f"model {model!r} is served by upstreams speaking {', '.join(speaks)}; "
                f"this request uses the {route.fmt} format and cross-format translation "
                "is not available yet",
            )
        by_cred = {c.id: m for c, m in same_format}
        cred = self.selector.pick(
            "+".join(sorted(found.providers)) + ":" + model, [c for c, _ in same_format]
        )
        upstream_model = by_cred[cred.id]
        executor = providers.executor_for(cred)
        upstream = executor.prepare(
            Call(
                credential=cred,
                upstreams=self.config.upstreams,
                client_headers=headers,
                endpoint=route.endpoint,
                model=upstream_model,
                query=query,
            )
        )
        new_body = None
        if "model" in body and body["model"] != upstream_model:
            body["model"] = upstream_model
            new_body = json.dumps(body).encode()
        stream = route.stream_by_path or bool(body.get("stream"))
        proxy = self._proxy_for(cred)
        return Plan(cred, executor.FORMAT, model, upstream_model, stream, upstream, new_body, proxy)

    def _proxy_for(self, cred: Credential) -> ProxyURL | None:
        try:
            proxy = resolve_proxy(cred.proxy_url, self.config.file.proxy_url)
        except ValueError as e:
            raise GatewayError(502, "proxy_misconfigured", f"{cred.id}: {e}") from e
        if proxy is not None and not proxy.supported:
            raise GatewayError(
                502,
                "proxy_unsupported",
                f"{cred.id} must be reached through {proxy.scheme} proxy {proxy.host}:{proxy.port}, "
                "which the gateway cannot chain yet; use an http:// or https:// proxy-url",
            )
        return proxy
