"""The gateway's runtime state, built from one Config and shared by the addons.

Nothing here imports mitmproxy: the addons hand in plain values (method,
path, headers, body) and apply what comes back to the flow.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any
from urllib.parse import urlsplit

from . import formats, providers
from .pool.affinity import Affinity, ForeignThinking, session_key
from .pool.authstore import AuthStore, ScanResult
from .pool.breaker import Breakers
from .config import Config, parse_duration
from .pool.cooldown import CooldownBook, CooldownStore, Decision, decide
from .pool.credentials import Credential, credentials_from_config
from .errors import BadRequest, GatewayError, ModelUnavailable, NoCredential
from .providers.login.keeper import RefreshFailed, TokenKeeper
from .providers.login.sessions import LoginSessions
from .providers import Call, UpstreamRequest
from .images import ImageClients, fetch_images
from .proxyurl import ProxyURL, resolve_proxy
from .retry import strikes_breaker
from .pool.quota import QuotaBook
from .records import RecordStore
from .routes import ApiRoute
from .pool.routing import ModelNotFound, ModelRouter
from .pool.selector import Selector
from .formats.anthropic import request as anthropic_request
from .formats import ir, jsonio

__all__ = ["Draft", "Gateway", "Plan", "Translation"]


@dataclass(frozen=True)
class Translation:
    """A request whose client and upstream speak different formats (or a wrapped one)."""

    client_format: str
    provider_format: str
    client_stream: bool
    upstream_stream: bool
    include_usage: bool  # the OpenAI client asked for a usage chunk
    count: bool = False  # a token-counting call, answered as a count


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
    translation: Translation | None = None
    # Answered by the gateway itself (a token count the upstream cannot give).
    local_reply: dict[str, Any] | None = None


@dataclass
class Draft:
    """A routed request before its upstream body is final.

    Between `Gateway.draft` and `Gateway.finalize` the addon may fetch the
    remote images a target needs as bytes (`image_urls`, `inline_images`).
    """

    route: ApiRoute
    body: dict[str, Any]
    headers: Mapping[str, str]
    query: Mapping[str, str]
    credential: Credential
    model_requested: str
    model_sent: str
    provider_format: str
    request: ir.Request | None  # decoded when translating
    # The body was changed in place (foreign thinking dropped): send it re-encoded.
    rewritten: bool = False

    def image_urls(self) -> list[str]:
        if self.request is None or self.provider_format not in formats.INLINE_IMAGES:
            return []
        return sorted({img.url for img in _images(self.request) if img.url and not img.data})

    def inline_images(self, fetched: Mapping[str, tuple[str, str]]) -> None:
        """Replace remote images by (media_type, base64 data) from `fetched`."""
        for img in _images(self.request) if self.request else ():
            if img.url in fetched:
                img.media_type, img.data = fetched[img.url]
                img.url = ""


def _images(req: ir.Request):
    for msg in req.messages:
        for part in msg.parts:
            if isinstance(part, ir.Image):
                yield part
            elif isinstance(part, ir.ToolResult):
                yield from (p for p in part.content if isinstance(p, ir.Image))


def _host_key(url: str) -> str:
    return "host:" + urlsplit(url).netloc


# Deeper bodies are refused before anything walks them: copying, re-encoding and
# the translators recurse, and no real request nests this far (serde_json's limit too).
MAX_DEPTH = 128
# A JSON string, escapes included; what is left outside strings is structure and scalars.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Opening brackets to +1 and closing ones to -1 (as signed bytes); everything else dropped.
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _nesting(text: str, body: Any) -> int:
    """How deep `body`, parsed from `text`, nests; exact only up to MAX_DEPTH + 1.

    0 when `text` holds too few brackets to nest too deep. Walking the parsed
    containers costs about as much per container as scanning the text costs
    per hundred bytes: bodies of long strings (images, source files) are
    walked, bodies of many small containers are scanned.
    """
    containers = text.count("[") + text.count("{")  # or fewer: some are in strings
    if containers <= MAX_DEPTH:
        return 0  # cannot nest too deep
    if containers * 100 < len(text):
        return _walk_depth(body)
    # Linear because `text` is valid JSON: every quote outside a string opens one.
    structure = _JSON_STRING.sub("", text).encode("utf-8", "surrogatepass")
    steps = structure.translate(_DEPTH_STEPS, _NOT_BRACKETS)
    return max(accumulate(memoryview(steps).cast("b")), default=0)


def _walk_depth(body: Any) -> int:
    deepest, stack = 0, [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if depth > MAX_DEPTH:
                break
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: json.dumps would send it on as `Infinity`, which is no JSON
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise BadRequest("request body is empty; expected a JSON object")
    too_deep = f"request body nests deeper than {MAX_DEPTH} levels"
    try:
        # What json.loads does with bytes (UTF-8, -16 or -32), so the depth scan reads the same text.
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        body = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError as e:  # thousands of levels: the parser itself gives up
        raise BadRequest(too_deep) from e
    except ValueError as e:  # bad JSON or encoding, NaN/Infinity, an integer of over 4300 digits
        raise BadRequest(f"request body is not valid JSON: {e}") from e
    if _nesting(text, body) > MAX_DEPTH:
        raise BadRequest(too_deep)
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
        # Cooldowns live in the records database, so a restart keeps them.
        self.cooldown_store = CooldownStore(config.db_path)
        self.cooldowns = CooldownBook(on_change=self._persist_cooldown)
        self.breakers = Breakers()
        # Credential id -> its upstream host, learnt from its attempts, for host breakers.
        self._hosts: dict[str, str] = {}
        routing = config.file.routing
        self.affinity = (
            Affinity(parse_duration(routing.session_affinity_ttl)) if routing.session_affinity is not False else None
        )
        self.foreign_thinking = ForeignThinking()
        self.images = ImageClients()  # remote images for Gemini and Kiro, SSRF-guarded
        oauth = config.file.oauth
        self.tokens = TokenKeeper(
            config, self.store, on_change=self.rebuild_router, retry_seconds=oauth.refresh_retry_seconds
        )
        self.logins = LoginSessions(
            config, self.store, on_written=self.rebuild_router,
            timeout=oauth.login_timeout_seconds, callback_ports=oauth.callback_ports,
        )
        self.quotas = QuotaBook(
            config, self.credentials, self.tokens.ensure, self.cooldowns,
            interval=config.file.quota_refresh_seconds,
        )

    async def aclose(self) -> None:
        """Close what holds sockets: pending logins' listeners, HTTP clients."""
        await self.logins.aclose()
        await self.tokens.aclose()
        await self.quotas.aclose()
        await self.images.aclose()

    def restore_cooldowns(self) -> int:
        """Load persisted cooldowns (blocking; at start-up)."""
        return self.cooldowns.restore(self.cooldown_store.load())

    def _persist_cooldown(self, cooldown, cred_id: str, model: str) -> None:
        # Called on the event loop from the book: hand the disk write to a thread.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.cooldown_store.apply(cooldown, cred_id, model)
            return
        loop.run_in_executor(None, self.cooldown_store.apply, cooldown, cred_id, model)

    def report(self, plan: Plan, status: int, headers: Mapping[str, str], body: bytes) -> None:
        """What an attempt's outcome means for its credential: cooldowns, breaker, affinity."""
        cred, model = plan.credential.id, plan.model_sent
        host = self._hosts[cred] = _host_key(plan.upstream.url)
        if 200 <= status < 400:
            self.cooldowns.success(cred, model)
            self.breakers.success(cred)
            self.breakers.success(host)
            return
        cfg = self.config.file
        decision = decide(
            status, headers, body, self.cooldowns.strikes(cred, model), time.time(),
            transient_seconds=cfg.transient_error_cooldown_seconds,
        )
        if cfg.disable_cooling or plan.credential.data.get("disable_cooling"):
            decision = None
        if decision is not None:
            self.cooldowns.cool(cred, model, decision)
            if decision.scope == "account" and self.affinity is not None:
                self.affinity.forget(cred)
        if strikes_breaker(status):
            self.breakers.failure(cred)
            # A bad upstream host fails every credential that points at it.
            self.breakers.failure(host)

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

    def draft(
        self,
        route: ApiRoute,
        raw_body: bytes,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        exclude: frozenset[str] = frozenset(),
        pin: str | None = None,
    ) -> Draft:
        """Route a request to a credential; `pin` names one to use if it can serve."""
        body = parse_body(raw_body)
        # Every request, same-format ones too: those go on undecoded, so this is their only check.
        formats.module(route.fmt, "request").validate(body)
        return self._route(route, body, headers, query, exclude, pin)

    def _route(
        self,
        route: ApiRoute,
        body: dict[str, Any],
        headers: Mapping[str, str],
        query: Mapping[str, str],
        exclude: frozenset[str],
        pin: str | None = None,
    ) -> Draft:
        model = route.model or body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("the request names no model", "missing_model")
        try:
            found = self.router.resolve(model)
        except ModelNotFound as e:
            raise ModelUnavailable(str(e)) from e
        usable = self._usable(model, found, exclude)
        # Same-format upstreams first: nothing is lost that translation could lose.
        native = [
            (c, m)
            for c, m in usable
            if providers.format_of(c, m) == route.fmt and not providers.wrapped(c)
        ]
        candidates = native or usable
        # Every usable credential's upstream name: a pinned one need not be in `candidates`.
        by_cred = {c.id: m for c, m in usable}
        pinned = [c for c, _ in usable if c.id == pin]
        if pinned:
            candidates = [(pinned[0], by_cred[pin])]
        cred = pinned[0] if pinned else self._pick(found, model, candidates, headers, body)
        fmt = providers.format_of(cred, by_cred[cred.id])
        rewritten = fmt == route.fmt == "anthropic" and self._drop_foreign_thinking(headers, body, cred.id)
        request = None
        if fmt != route.fmt or providers.wrapped(cred):
            try:
                request = formats.module(route.fmt, "request").decode_request(body)
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                raise BadRequest(f"request body is not a valid {route.fmt} request: {e}") from e
        return Draft(route, body, headers, query, cred, model, by_cred[cred.id], fmt, request, rewritten)

    def _drop_foreign_thinking(self, headers: Mapping[str, str], body: dict[str, Any], cred_id: str) -> bool:
        key = session_key(headers, body)
        turns = self.foreign_thinking.turns(key, cred_id) if key is not None else None
        return bool(turns) and anthropic_request.strip_thinking(body, turns)

    def note_foreign_thinking(self, headers: Mapping[str, str], body: dict[str, Any], cred_id: str) -> None:
        """`cred_id` refused this session's thinking so far: drop it there from now on."""
        if (key := session_key(headers, body)) is not None:
            self.foreign_thinking.note(key, cred_id, anthropic_request.assistant_turns(body))

    def _usable(self, model: str, found, exclude: frozenset[str]) -> list[tuple[Credential, str]]:
        """Candidates neither cooling down nor behind an open breaker; else the 429 to give."""
        usable, waits = [], []
        now = time.time()
        for cred, upstream_model in found.candidates:
            if cred.id in exclude:
                continue
            if (cd := self.cooldowns.blocked(cred.id, upstream_model)) is not None:
                waits.append(cd.until - now)
                continue
            breaker = self._open_breaker(cred)
            if breaker is not None:
                waits.append(breaker.snapshot().get("remaining") or 1.0)
                continue
            usable.append((cred, upstream_model))
        if usable:
            return usable
        if not waits:
            raise NoCredential(503, "no_credential", f"no other credential can serve {model!r}")
        reset = max(1, math.ceil(min(waits)))
        provider = ",".join(sorted(found.providers))
        raise NoCredential(
            429,
            "model_cooldown",
            f"all credentials for model {model!r} are cooling down; retry in {reset}s",
            extra={"model": model, "provider": provider, "reset_time": f"{reset}s", "reset_seconds": reset},
            headers={"retry-after": str(reset)},
            reset=reset,
        )

    def _open_breaker(self, cred: Credential):
        for key in (cred.id, self._hosts.get(cred.id)):
            if key in self.breakers and self.breakers.get(key).state == "open":
                return self.breakers.get(key)
        return None

    def _affinity_key(self, candidates, headers, body) -> str | None:
        if self.affinity is None:
            return None
        if self.config.file.routing.session_affinity:
            return session_key(headers, body)
        # Unset: Claude OAuth pools keep a session on the account whose thinking
        # signatures it carries, when the agent names its session.
        if any(c.provider == "claude" and c.kind == "oauth" for c, _ in candidates):
            return session_key(headers, body, by_message=False)
        return None

    def _pick(self, found, model: str, candidates, headers, body) -> Credential:
        key = self._affinity_key(candidates, headers, body)
        if key is not None:
            pinned = self.affinity.get(key)
            for cred, _ in candidates:
                if cred.id == pinned and self.breakers.allow(cred.id):
                    self.affinity.pin(key, cred.id)
                    return cred
        pool = [c for c, _ in candidates]
        cursor = "+".join(sorted(found.providers)) + ":" + model
        while True:
            cred = self.selector.pick(cursor, pool)
            # A half-open breaker admits one probe; the others pick again.
            if self.breakers.allow(cred.id) or len(pool) == 1:
                break
            pool = [c for c in pool if c.id != cred.id]
        if key is not None:
            self.affinity.pin(key, cred.id)
        return cred

    async def ready(self, draft: Draft, exclude: frozenset[str] = frozenset()) -> Draft:
        """`draft` with a credential whose token can be sent now.

        An expiring token is refreshed (once, however many requests wait on
        it); a credential that cannot get one is passed over for the next,
        never one in `exclude` (those a failover already tried).
        """
        tried: set[str] = set(exclude)
        while True:
            try:
                draft.credential = await self.tokens.ensure(draft.credential)
                return draft
            except RefreshFailed as e:
                tried.add(draft.credential.id)
                # Until its refresh may be tried again, other requests skip it too.
                if not e.needs_login:
                    self.cooldowns.cool(
                        draft.credential.id, "*",
                        Decision(self.tokens.retry_seconds, "account", "token refresh failed", 401),
                    )
                draft = self._route(draft.route, draft.body, draft.headers, draft.query, frozenset(tried))

    async def plan(
        self,
        route: ApiRoute,
        raw_body: bytes,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        exclude: frozenset[str] = frozenset(),
        pin: str | None = None,
    ) -> Plan:
        """Where a client request goes, and as what: routed to a credential whose
        token can be sent now, remote images fetched for targets that need bytes,
        the upstream body encoded. Raises GatewayError for the client's answer.

        `exclude` names credentials a failover already tried; `pin` one to use if it can serve.
        """
        draft = await self.ready(self.draft(route, raw_body, headers, query, exclude, pin), exclude)
        if urls := draft.image_urls():
            policy = self.config.file.images
            draft.inline_images(await fetch_images(self.images.get(policy), urls, policy))
        return self.finalize(draft)

    def finalize(self, draft: Draft) -> Plan:
        if draft.request is None:
            return self._native(draft)
        return self._translated(draft)

    def _native(self, d: Draft) -> Plan:
        executor = providers.executor_for(d.credential)
        call = self._call(d, d.route.endpoint, d.query, d.body)
        upstream = executor.prepare(call)
        body = d.body
        if "model" in body and body["model"] != d.model_sent:
            body = {**body, "model": d.model_sent}
        stream = d.route.stream_by_path or bool(d.body.get("stream"))
        translation = None
        if adapt := getattr(executor, "adapt_native", None):
            body = adapt(body)
        if wrap := getattr(executor, "wrap", None):
            body = wrap(body, call)
        if providers.stream_only(d.credential) and not stream:
            # Same format, but the upstream only streams: fold its stream into one answer.
            translation = Translation(d.route.fmt, d.provider_format, False, True, False)
        new_body = jsonio.dumps(body) if body is not d.body or d.rewritten else None
        return Plan(
            d.credential, d.provider_format, d.model_requested, d.model_sent, stream,
            upstream, new_body, self._proxy_for(d.credential), translation,
        )

    def _translated(self, d: Draft) -> Plan:
        cred, req, kind = d.credential, d.request, d.route.call_kind
        client_stream = d.route.stream_by_path or req.stream
        upstream_stream = kind == "generate" and (client_stream or providers.stream_only(cred))
        req.stream = upstream_stream
        req.model = d.model_sent
        translation = Translation(
            d.route.fmt, d.provider_format, client_stream, upstream_stream, req.include_usage,
            count=kind == "count",
        )
        endpoint = formats.upstream_endpoint(d.provider_format, kind, upstream_stream)
        executor = providers.executor_for(cred)
        if endpoint is None:
            # No counting endpoint upstream: estimate, and say it is an estimate.
            return Plan(
                cred, d.provider_format, d.model_requested, d.model_sent, False,
                UpstreamRequest("", {}, ()), None, None, translation,
                local_reply=formats.count_reply(d.route.fmt, formats.estimate_tokens(req)),
            )
        body = formats.module(d.provider_format, "request").encode_request(req, d.model_sent)
        query = {"alt": "sse"} if endpoint == "streamGenerateContent" else {}
        call = self._call(d, endpoint, query, body)
        if wrap := getattr(executor, "wrap", None):
            body = wrap(body, call)
        return Plan(
            cred, d.provider_format, d.model_requested, d.model_sent, client_stream,
            executor.prepare(call), jsonio.dumps(body), self._proxy_for(cred), translation,
        )

    def _call(
        self, d: Draft, endpoint: str, query: Mapping[str, str], body: Mapping[str, Any]
    ) -> Call:
        return Call(
            credential=d.credential,
            upstreams=self.config.upstreams,
            client_headers=d.headers,
            endpoint=endpoint,
            model=d.model_sent,
            query=query,
            header_defaults=self.config.headers_for(d.credential.provider),
            body=body,
        )

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
