"""Run one FakeUpstream in its own process: `python -m tests.fakes.serve --port N`.

Used by `scripts/bench.py` so the fake does not share a GIL with the load
generator. `--port 0` (the default) takes a free ephemeral port. Once the
server listens, one line `listening on http://127.0.0.1:PORT` goes to stdout;
then it blocks until SIGTERM/SIGINT.

Unlike the in-process fixture, this fake does not keep the requests it saw
(a benchmark would pile up hundreds of thousands of them).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from http.server import ThreadingHTTPServer

from tests.fakes.upstreams import DEFAULT_REPLY, Captured, FakeUpstream, _Handler, _Server


class _PortServer(_Server):
    """`_Server` bound to a chosen port instead of always port 0."""

    request_queue_size = 128  # room for many concurrent connects

    def __init__(self, fake: FakeUpstream, port: int) -> None:
        ThreadingHTTPServer.__init__(self, ("127.0.0.1", port), _Handler)
        self.fake = fake
        self._conns = set()
        self._conns_lock = threading.Lock()


class ServedUpstream(FakeUpstream):
    def __init__(self, port: int, reply_text: str = DEFAULT_REPLY, **kwargs) -> None:
        super().__init__(reply_text, **kwargs)
        self._wanted_port = port

    def start(self) -> ServedUpstream:
        if self._server is not None:
            raise RuntimeError("FakeUpstream already started")
        self._server = _PortServer(self, self._wanted_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-upstream-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def _record(self, req: Captured) -> None:
        pass  # don't accumulate captured requests in a long-running process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="reply text (one SSE delta per word)")
    parser.add_argument("--stream-delay", type=float, default=0.0, help="seconds between SSE events")
    parser.add_argument("--always-status", type=int, default=0, help="answer every request with this error status")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    fake = ServedUpstream(args.port, args.reply, stream_delay=args.stream_delay).start()
    if args.always_status:
        # An exhausted account, for the failover benchmark.
        fake.fail_next(args.always_status, times=10**12)
    try:
        print(f"listening on {fake.url}", flush=True)
        while not stop.wait(3600):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
