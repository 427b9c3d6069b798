"""Every row of the flow-error table, and the exception table, classified."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from quotio_core.faults import EXCEPTIONS, FLOW_ERRORS, Fault, classify_exception, classify_flow_error

# (mitmproxy's message, request complete, client gone) -> (side, kind).
# Messages as mitmproxy 12.3 words them (proxy/layers/http, proxy/server.py).
CASES = [
    ("Client disconnected.", True, True, "client", "hang-up"),
    ("Client disconnected.", True, False, "client", "hang-up"),
    ("stream reset by client (CANCEL)", True, True, "client", "hang-up"),
    ("client disconnected", True, True, "client", "hang-up"),
    ("Request body exceeds mitmproxy's body_size_limit.", False, False, "client", "too-large"),
    ("Connection killed.", True, False, "operator", "killed"),
    ("connect timeout after 10s", True, False, "upstream", "timeout"),
    ("Connection killed: connect timeout after 10s", True, False, "upstream", "timeout"),
    ("[Errno 110] Connection timed out", True, False, "upstream", "timeout"),
    ("server closed connection", True, False, "upstream", "reset"),
    ("stream reset by server (INTERNAL_ERROR)", True, False, "upstream", "reset"),
    ("unexpected server response: b'garbage'", True, False, "upstream", "protocol"),
    ("Cannot parse HTTP response: bad status line", True, False, "upstream", "protocol"),
    ("Received invalid header from server, refusing to prevent request smuggling attacks.", True, False,
     "upstream", "protocol"),
    ("Response body exceeds mitmproxy's body_size_limit.", True, False, "upstream", "too-large"),
    ("[Errno 111] Connect call failed ('127.0.0.1', 9)", True, False, "upstream", "refused"),
    ("Multiple exceptions: [Errno 111] Connect call failed ('::1', 9, 0, 0), [Errno 111] ...", True, False,
     "upstream", "refused"),
    ("[Errno -2] Name or service not known", True, False, "upstream", "dns"),
    ("Cannot open connection, no hostname given.", True, False, "upstream", "dns"),
    ("Connection killed: blocked by policy", True, False, "upstream", "refused"),
    ("TLS handshake failed: certificate verify failed", True, False, "upstream", "tls"),
    ("[Errno 104] Connection reset by peer", True, False, "upstream", "reset"),
    ("[Errno 104] Connection reset by peer", True, True, "client", "hang-up"),
    # The same parse error from either side: the unfinished request or the closed client decides.
    ("HTTP/1 protocol error: peer closed connection without sending complete message body "
     "(received 5 bytes, expected 104)", False, True, "client", "hang-up"),
    ("HTTP/1 protocol error: peer closed connection without sending complete message body "
     "(incomplete chunked read)", True, False, "upstream", "reset"),
    ("HTTP/1 protocol error: Illegal header line", True, False, "upstream", "protocol"),
    ("HTTP/2 connection closed: <ConnectionTerminated error_code:0>", True, True, "client", "hang-up"),
    ("HTTP/2 protocol error: Invalid input ConnectionInputs.RECV_HEADERS", True, False, "upstream", "protocol"),
    ("peer closed connection", True, False, "upstream", "reset"),
    # Unknown text: who can still be reached decides.
    ("something new in mitmproxy 13", True, True, "client", "hang-up"),
    ("something new in mitmproxy 13", True, False, "upstream", "protocol"),
    # The upstream never saw a whole request: whatever broke, the client stopped sending it.
    ("server closed connection", False, True, "client", "hang-up"),
]


@pytest.mark.parametrize(("message", "complete", "gone", "side", "kind"), CASES)
def test_flow_errors(message, complete, gone, side, kind):
    fault = classify_flow_error(message, request_complete=complete, client_gone=gone)
    assert (fault.side, fault.kind) == (side, kind)
    assert fault.detail == message


def test_every_table_row_is_exercised():
    for rule in FLOW_ERRORS:
        assert any(rule.pattern.search(case[0]) for case in CASES), rule.pattern.pattern


def test_a_gateway_deadline_outranks_what_mitmproxy_saw():
    # Cancelling a silent upstream makes mitmproxy close the client too.
    fault = classify_flow_error(
        "Client disconnected.", request_complete=True, client_gone=True,
        gateway_reason="idle timeout: upstream sent nothing for 600s",
    )
    assert fault == Fault("upstream", "timeout", "idle timeout: upstream sent nothing for 600s")
    assert fault.status == 504


def test_statuses_and_errors_follow_nginx():
    hang_up = classify_flow_error("Client disconnected.", request_complete=True, client_gone=True)
    assert hang_up.status == 499
    assert hang_up.error.startswith("client closed")
    assert not hang_up.upstream
    refused = classify_flow_error("[Errno 111] Connect call failed", request_complete=True, client_gone=False)
    assert (refused.status, refused.upstream) == (502, True)
    assert refused.error == "upstream refused: [Errno 111] Connect call failed"
    assert Fault("client", "too-large", "x").status == 413
    assert Fault("operator", "killed", "x").status == 499


EXCEPTION_CASES = [
    (asyncio.CancelledError(), "client", "hang-up"),
    (httpx.ConnectTimeout("t"), "upstream", "timeout"),
    (httpx.ReadTimeout("t"), "upstream", "timeout"),
    (httpx.WriteTimeout("t"), "upstream", "timeout"),
    (httpx.PoolTimeout("t"), "upstream", "timeout"),
    (TimeoutError(), "upstream", "timeout"),
    (httpx.ConnectError("refused"), "upstream", "refused"),
    (ConnectionRefusedError(), "upstream", "refused"),
    (httpx.RemoteProtocolError("peer closed"), "upstream", "protocol"),
    (httpx.LocalProtocolError("bad"), "upstream", "protocol"),
    (httpx.ReadError("reset"), "upstream", "reset"),
    (httpx.WriteError("reset"), "upstream", "reset"),
    (ConnectionResetError(), "upstream", "reset"),
    (httpx.ProxyError("proxy"), "upstream", "refused"),
    (httpx.DecodingError("gzip"), "upstream", "protocol"),
    (httpx.TooManyRedirects("loop"), "upstream", "protocol"),
    (ValueError("anything else"), "upstream", "protocol"),
]


@pytest.mark.parametrize(("exc", "side", "kind"), EXCEPTION_CASES)
def test_exceptions(exc, side, kind):
    fault = classify_exception(exc)
    assert (fault.side, fault.kind) == (side, kind)


def test_every_exception_row_is_exercised():
    named = {cls.__name__ for exc, *_ in EXCEPTION_CASES for cls in type(exc).__mro__}
    assert set(EXCEPTIONS) <= named
