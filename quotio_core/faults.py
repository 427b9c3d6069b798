"""Who made a request fail: the client, the upstream, or the gateway's operator.

Only an upstream fault says anything about a credential. A client that hangs
up (Esc in an agent, an SDK that stops reading, a load tool that stops) must
never cool an account, strike a breaker or start a failover, or one keystroke
takes a pool offline. So every failure is classified here, once, from what
mitmproxy reports on the flow (`flow.error.msg`) or from the exception an
attempt of the gateway's own raised, and the callers act on the result.

Recorded as nginx does: a client hang-up is status 499 and its error starts
"client closed"; an upstream fault is 502 (504 for a timeout).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["CLIENT_CLOSED", "FLOW_ERRORS", "Fault", "classify_exception", "classify_flow_error"]

Side = Literal["client", "upstream", "operator"]

CLIENT_CLOSED = 499


@dataclass(frozen=True, slots=True)
class Fault:
    side: Side
    # hang-up, too-large, refused, dns, tls, timeout, reset, protocol, killed
    kind: str
    detail: str

    @property
    def upstream(self) -> bool:
        return self.side == "upstream"

    @property
    def status(self) -> int:
        """The status a record of this failure carries."""
        if self.side == "client":
            return 413 if self.kind == "too-large" else CLIENT_CLOSED
        if self.side == "operator":
            return CLIENT_CLOSED
        return 504 if self.kind == "timeout" else 502

    @property
    def error(self) -> str:
        """The record's error text; a hang-up's starts with "client closed"."""
        if self.side == "client" and self.kind == "hang-up":
            return f"client closed the connection: {self.detail}"
        if self.side == "operator":
            return f"killed by the operator: {self.detail}"
        return f"{self.side} {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str]
    # None: the same message comes from either side; decided from the connections.
    side: Side | None
    kind: str


def _rule(pattern: str, side: Side | None, kind: str) -> _Rule:
    return _Rule(re.compile(pattern, re.IGNORECASE), side, kind)


# mitmproxy 12's `flow.error.msg` texts, first match wins. Sources:
# proxy/layers/http/_http1.py, _http2.py, __init__.py and proxy/server.py.
FLOW_ERRORS: tuple[_Rule, ...] = (
    # HTTP/1 client closed while its answer was pending or streaming.
    _rule(r"^Client disconnected\.?$", "client", "hang-up"),
    # HTTP/2 client cancelled its stream (RST_STREAM, CANCEL when an SDK aborts).
    _rule(r"^stream reset by client", "client", "hang-up"),
    # The proxy cancels a departed client's transports.
    _rule(r"^client disconnected$", "client", "hang-up"),
    _rule(r"^Request body exceeds", "client", "too-large"),
    # flow.kill() from mitmweb, the console or a script.
    _rule(r"^Connection killed\.$", "operator", "killed"),
    # The gateway's own deadlines (addons/timeouts.py names them so).
    _rule(r"(connect|first-byte|idle) timeout", "upstream", "timeout"),
    _rule(r"timed out|timeout", "upstream", "timeout"),
    _rule(r"^server closed connection", "upstream", "reset"),
    _rule(r"^stream reset by server", "upstream", "reset"),
    _rule(r"^unexpected server response", "upstream", "protocol"),
    _rule(r"^Cannot parse HTTP response", "upstream", "protocol"),
    _rule(r"from server, refusing", "upstream", "protocol"),
    _rule(r"^Response body exceeds", "upstream", "too-large"),
    _rule(r"Connect call failed|Connection refused|Errno 111\b|Multiple exceptions", "upstream", "refused"),
    _rule(r"Name or service not known|nodename nor servname|getaddrinfo|Temporary failure in name resolution|no hostname given", "upstream", "dns"),
    _rule(r"Connection killed:", "upstream", "refused"),
    _rule(r"TLS|SSL|certificate|handshake", "upstream", "tls"),
    _rule(r"Connection reset|Broken pipe|Errno 104\b|Errno 32\b", None, "reset"),
    # A body cut short by either side (h11's words); who was sending decides.
    _rule(r"peer closed connection without sending complete message body", None, "reset"),
    # Parse errors from either connection: who sent the broken message decides.
    _rule(r"^HTTP/1 protocol error", None, "protocol"),
    _rule(r"^HTTP/2 (protocol error|connection closed)", None, "protocol"),
    _rule(r"peer closed", None, "reset"),
)


def classify_flow_error(
    message: str,
    *,
    request_complete: bool,
    client_gone: bool,
    gateway_reason: str | None = None,
) -> Fault:
    """Classify `flow.error.msg`.

    `request_complete`: the client had sent its whole request (only then can an
    upstream be at fault for a broken exchange). `client_gone`: the client's
    connection can no longer be read. `gateway_reason`: a deadline of the
    gateway's own that ended the attempt (it outranks what mitmproxy saw,
    since cancelling the upstream connection shows up as "server closed").
    """
    if gateway_reason:
        return Fault("upstream", "timeout", gateway_reason)
    for rule in FLOW_ERRORS:
        if rule.pattern.search(message):
            side = rule.side
            if side is None:
                side = "client" if not request_complete or client_gone else "upstream"
            elif side == "upstream" and not request_complete:
                # The upstream never saw a whole request: the client stopped sending it.
                side = "client"
            kind = "hang-up" if side == "client" and rule.kind != "too-large" else rule.kind
            return Fault(side, kind, message)
    side: Side = "client" if not request_complete or client_gone else "upstream"
    return Fault(side, "hang-up" if side == "client" else "protocol", message)


# Exceptions of an attempt the gateway sends itself (httpx), by type name so
# this module needs no HTTP library; the first name in an exception's MRO wins.
EXCEPTIONS: dict[str, tuple[Side, str]] = {
    "CancelledError": ("client", "hang-up"),
    "ConnectTimeout": ("upstream", "timeout"),
    "ReadTimeout": ("upstream", "timeout"),
    "WriteTimeout": ("upstream", "timeout"),
    "PoolTimeout": ("upstream", "timeout"),
    "TimeoutException": ("upstream", "timeout"),
    "TimeoutError": ("upstream", "timeout"),
    "ConnectError": ("upstream", "refused"),
    "ConnectionRefusedError": ("upstream", "refused"),
    "RemoteProtocolError": ("upstream", "protocol"),
    "LocalProtocolError": ("upstream", "protocol"),
    "ReadError": ("upstream", "reset"),
    "WriteError": ("upstream", "reset"),
    "ConnectionResetError": ("upstream", "reset"),
    "ProxyError": ("upstream", "refused"),
    "DecodingError": ("upstream", "protocol"),
    "TooManyRedirects": ("upstream", "protocol"),
}


def classify_exception(exc: BaseException) -> Fault:
    """Classify an exception raised while the gateway made an upstream call itself."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, asyncio.CancelledError):
        return Fault("client", "hang-up", detail if str(exc) else "request cancelled")
    for cls in type(exc).__mro__:
        if cls.__name__ in EXCEPTIONS:
            side, kind = EXCEPTIONS[cls.__name__]
            return Fault(side, kind, detail)
    return Fault("upstream", "protocol", detail)
