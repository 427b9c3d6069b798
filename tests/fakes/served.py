"""What every fake server shares: a ThreadingHTTPServer on 127.0.0.1 in a daemon thread.

A fake class mixes in :class:`Served` and names its request handler in
`HANDLER`; the handler reaches the fake as `self.server.fake`. An ephemeral
port keeps parallel fakes (and parallel runs) apart.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, Self

__all__ = ["Served"]


class Served:
    HANDLER: ClassVar[type[BaseHTTPRequestHandler]]
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.HANDLER)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        # A short poll interval keeps stop() fast: shutdown() waits for a poll.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name=f"{type(self).__name__}-{server.server_address[1]}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
