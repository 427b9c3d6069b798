"""The local listener an authorization-code login's browser redirect lands on.

It exists only while a login on its port is pending, answers only GETs to
its one path, and hands (state, code, error) to the login sessions; an
unknown `state` is refused on the page, and nothing else is served.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlsplit

__all__ = ["CallbackServer"]

log = logging.getLogger(__name__)

# (state, code, error) -> (ok, message for the page)
OnCallback = Callable[[str, str, str], Awaitable[tuple[bool, str]]]

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>quotio login</title></head>
<body style="font-family:sans-serif;max-width:36em;margin:4em auto"><h1>{title}</h1><p>{message}</p></body></html>"""
_MAX_REQUEST = 16 * 1024


class CallbackServer:
    def __init__(self, host: str, port: int, path: str, on_callback: OnCallback):
        self.host, self.port, self.path = host, port, path
        self._on_callback = on_callback
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status, title, message = await self._answer(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        body = _PAGE.format(title=html.escape(title), message=html.escape(message)).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    async def _answer(self, head: bytes) -> tuple[str, str, str]:
        if len(head) > _MAX_REQUEST:
            return "431 Request Header Fields Too Large", "Login failed", "request too large"
        try:
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        except ValueError:
            return "400 Bad Request", "Login failed", "malformed request"
        url = urlsplit(target)
        if method != "GET" or url.path.rstrip("/") != self.path.rstrip("/"):
            return "404 Not Found", "Not found", "this listener only takes the login redirect"
        query = dict(parse_qsl(url.query))
        error = query.get("error_description") or query.get("error") or ""
        ok, message = await self._on_callback(query.get("state", ""), query.get("code", ""), error)
        if ok:
            return "200 OK", "Login complete", message
        return "400 Bad Request", "Login failed", message
