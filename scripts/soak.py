"""Soak: many streams at once, then a long mixed run (`make soak`; a benchmark, not a test).

1. Streams: `--streams` (1,000) concurrent SSE streams of `--events` (20)
   events `--gap-ms` (200) apart, first straight to the fake upstream, then
   through the gateway. Every stream must complete with every event in order;
   the table shows first-byte latency p50/p99 both ways and what the gateway
   adds.
2. Mixed: `--requests` (100,000) requests at `--concurrency` (32), cycling
   through same-format (Anthropic -> Claude) and translated (OpenAI Chat ->
   Claude) requests, streamed and not, requests that fail over (a key whose
   upstream always answers 429 is tried first), and streams the client
   cancels after three events. After a warm-up and after the run: the
   gateway's RSS, open file descriptors and asyncio tasks (from /metrics); at
   the end the records must hold exactly one client request per request sent.

The fake upstream is an asyncio server in its own process (threads would not
hold 1,000 streams), answering Anthropic Messages; the load is generated
with raw asyncio sockets, so the generator costs little CPU next to the
gateway on the same machine. Exit status 1 when a goal is missed or a
request went wrong, 2 when the set-up failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RSS_GOAL_MB = 120
CLIENT_KEY = "soak-client-key-0123456789"
MGMT_KEY = "soak-mgmt-key-0123456789"
MODEL = "claude-sonnet-4-5"


# --- the fake upstream (its own process) ------------------------------------------------------

_PLAN = re.compile(r"events=(\d+) gap=(\d+)")


def _sse(event: str, data: dict) -> bytes:
    frame = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(frame), frame)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = next((int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"), 0)
            body = json.loads(await reader.readexactly(length)) if length else {}
            if path.startswith("/fail"):
                err = b'{"type":"error","error":{"type":"rate_limit_error","message":"soak: always 429"}}'
                writer.write(b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
                             b"retry-after: 0\r\ncontent-length: %d\r\n\r\n%s" % (len(err), err))
                await writer.drain()
                continue
            text = json.dumps(body.get("messages", ""))
            m = _PLAN.search(text)
            events, gap = (int(m.group(1)), int(m.group(2)) / 1000) if m else (20, 0.0)
            usage = {"input_tokens": 10, "output_tokens": events}
            message = {"id": "msg_soak", "type": "message", "role": "assistant", "model": body.get("model"),
                       "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
            if not body.get("stream"):
                message["content"] = [{"type": "text", "text": "".join(f"w{i} " for i in range(events))}]
                message["stop_reason"] = "end_turn"
                out = json.dumps(message).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(out), out))
                await writer.drain()
                continue
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            writer.write(_sse("message_start", {"type": "message_start", "message": message}))
            writer.write(_sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                      "content_block": {"type": "text", "text": ""}}))
            await writer.drain()
            for i in range(events):
                if gap:
                    await asyncio.sleep(gap)
                writer.write(_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                          "delta": {"type": "text_delta", "text": f"w{i} "}}))
                await writer.drain()
            writer.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
            writer.write(_sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                                "usage": {"output_tokens": events}}))
            writer.write(_sse("message_stop", {"type": "message_stop"}) + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve_fake() -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0, backlog=4096)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


# --- the load -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool
    why: str = ""
    ttfb: float | None = None


def _request(path: str, body: dict) -> bytes:
    raw = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"x-api-key: {CLIENT_KEY}\r\nauthorization: Bearer {CLIENT_KEY}\r\nanthropic-version: 2023-06-01\r\n"
            f"content-length: {len(raw)}\r\n\r\n").encode() + raw


async def _read_chunked(reader: asyncio.StreamReader, on_data, stop_after: int | None = None) -> bool:
    """Reads a chunked body, feeding on_data; False when stopped early on purpose."""
    seen = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return True
        on_data(await reader.readexactly(size))
        await reader.readexactly(2)
        seen += 1
        if stop_after is not None and seen >= stop_after:
            return False


async def one(url_port: int, kind: str, events: int, gap_ms: int) -> Outcome:
    """One request of `kind`: anthropic|openai x stream|json, failover, cancel."""
    content = f"soak events={events} gap={gap_ms}"
    stream = kind in ("anthropic-stream", "openai-stream", "cancel")
    if kind.startswith("openai"):
        path, body = "/v1/chat/completions", {"model": MODEL, "stream": stream,
                                              "messages": [{"role": "user", "content": content}]}
    else:
        model = f"fo/{MODEL}" if kind == "failover" else MODEL
        path, body = "/v1/messages", {"model": model, "max_tokens": 64, "stream": stream,
                                      "messages": [{"role": "user", "content": content}]}
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", url_port)
    try:
        writer.write(_request(path, body))
        head = await reader.readuntil(b"\r\n\r\n")
        ttfb = time.perf_counter() - started
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            return Outcome(False, f"HTTP {status}")
        text = bytearray()
        if b"transfer-encoding: chunked" not in head.lower():
            length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))
            text += await reader.readexactly(length)
        elif kind == "cancel":
            await _read_chunked(reader, text.extend, stop_after=3)
            return Outcome(True, "", ttfb)  # hung up on purpose
        else:
            await _read_chunked(reader, text.extend)
        words = re.findall(rb"w(\d+) ", bytes(text))
        if [int(w) for w in words] != list(range(events)):
            return Outcome(False, f"events out of order or missing ({len(words)}/{events})")
        return Outcome(True, "", ttfb)
    except (OSError, asyncio.IncompleteReadError, ValueError, AttributeError) as e:
        return Outcome(False, f"{type(e).__name__}: {e}"[:100])
    finally:
        writer.close()


# --- measuring the gateway process ---------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def asyncio_tasks(url: str) -> int:
    import httpx

    text = httpx.get(url + "/metrics", headers={"authorization": f"Bearer {MGMT_KEY}"}, timeout=10).text
    m = re.search(r"^quotio_asyncio_tasks (\S+)$", text, re.MULTILINE)
    return int(float(m.group(1))) if m else -1


def settle(url: str, pid: int, seconds: float = 3.0) -> tuple[float, int, int]:
    time.sleep(seconds)
    return rss_mb(pid), open_fds(pid), asyncio_tasks(url)


def request_rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
        return con.execute("SELECT count(DISTINCT request_id) FROM requests WHERE route NOT LIKE '/v0/%'"
                           " AND route != '/metrics'").fetchone()[0]


# --- phases -----------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))] if values else float("nan")


async def wave(port: int, n: int, events: int, gap_ms: int) -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(port, "anthropic-stream", events, gap_ms) for _ in range(n)))
    return list(outcomes), time.perf_counter() - started


KINDS = ("anthropic-stream", "anthropic-json", "openai-stream", "openai-json", "failover", "cancel")


@dataclass
class Mixed:
    sent: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    seconds: float = 0.0


async def mixed(port: int, total: int, concurrency: int) -> Mixed:
    result = Mixed()
    counter = iter(range(total))
    started = time.perf_counter()

    async def worker() -> None:
        for i in counter:
            kind = KINDS[i % len(KINDS)]
            outcome = await one(port, kind, 20, 0)
            result.sent[kind] += 1
            if not outcome.ok:
                result.failed[f"{kind}: {outcome.why}"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def start_fake(tmp: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, __file__, "--fake"], stdout=subprocess.PIPE,
                            stderr=(tmp / "fake.log").open("w"), preexec_fn=_raise_fd_limit)
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        raise RuntimeError(f"fake upstream did not start: {line!r}")
    return proc, line.removeprefix("listening on ").strip()


def _raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 65536), hard), hard))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--streams", type=int, default=1000, help="concurrent streams in the first phase")
    p.add_argument("--events", type=int, default=20, help="events per stream")
    p.add_argument("--gap-ms", type=int, default=200, help="milliseconds between a stream's events")
    p.add_argument("--requests", type=int, default=100_000, help="requests in the mixed phase")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent requests in the mixed phase")
    p.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.fake:
        _raise_fd_limit()
        asyncio.run(serve_fake())
        return 0
    _raise_fd_limit()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    from scripts.bench import machine_info
    from tests.gateway_proc import start_gateway

    print("quotio soak")
    for line in machine_info():
        print(line)
    tmp = Path(tempfile.mkdtemp(prefix="quotio-soak-"))
    fake, fake_url = start_fake(tmp)
    gw = None
    status = 0
    try:
        config = {
            "api-keys": [CLIENT_KEY],
            "remote-management": {"secret-key": MGMT_KEY},
            "claude-api-key": [
                {"api-key": "sk-ant-soak-good", "base-url": fake_url},
                # "fo/<model>": the first key always answers 429, the second serves.
                {"api-key": "sk-ant-soak-429", "base-url": fake_url + "/fail", "prefix": "fo", "priority": 10},
                {"api-key": "sk-ant-soak-fo", "base-url": fake_url, "prefix": "fo"},
            ],
            "disable-cooling": True,  # every failover request really fails over
            "max-retry-interval": 1,
        }
        gw = start_gateway(tmp / "gateway", config, env={}, wait=True)
        pid = gw.proc.pid
        port = int(fake_url.rsplit(":", 1)[1])

        print(f"\n1. {args.streams} concurrent SSE streams, {args.events} events {args.gap_ms} ms apart")
        direct, direct_s = asyncio.run(wave(port, args.streams, args.events, args.gap_ms))
        through, through_s = asyncio.run(wave(gw.port, args.streams, args.events, args.gap_ms))
        rows = []
        for name, outs, secs in (("direct to the fake", direct, direct_s), ("through the gateway", through, through_s)):
            ttfb = [o.ttfb * 1000 for o in outs if o.ttfb is not None]
            bad = Counter(o.why for o in outs if not o.ok)
            rows.append((name, sum(o.ok for o in outs), pct(ttfb, 0.5), pct(ttfb, 0.99), secs, bad))
        print(f"   {'path':<22}{'complete':>10}{'ttfb p50':>11}{'ttfb p99':>11}{'wall':>8}")
        for name, ok, p50, p99, secs, bad in rows:
            print(f"   {name:<22}{ok:>6}/{args.streams:<4}{p50:>8.1f} ms{p99:>8.1f} ms{secs:>7.1f}s  {dict(bad) or ''}")
        print(f"   added first-byte latency: p50 {rows[1][2] - rows[0][2]:.1f} ms, p99 {rows[1][3] - rows[0][3]:.1f} ms")
        if rows[1][1] != args.streams:
            status = 1

        # A gateway of its own: the burst above leaves a high-water mark in
        # the allocator that says nothing about a long run.
        gw.stop()
        gw = start_gateway(tmp / "gateway-mixed", config, env={}, wait=True)
        pid = gw.proc.pid
        db = tmp / "gateway-mixed" / "quotio.db"
        print(f"\n2. {args.requests:,} mixed requests at concurrency {args.concurrency} (a fresh gateway): "
              + ", ".join(KINDS))
        # A warm-up first: connection pools and caches filled are the resting level.
        warm = asyncio.run(mixed(gw.port, len(KINDS) * args.concurrency * 4, args.concurrency))
        before = settle(gw.url, pid)
        before_rows = request_rows(db)
        result = asyncio.run(mixed(gw.port, args.requests, args.concurrency))
        result.failed.update(warm.failed)
        after = settle(gw.url, pid, 5.0)
        sent = sum(result.sent.values())
        deadline = time.monotonic() + 60
        while (recorded := request_rows(db) - before_rows) < sent and time.monotonic() < deadline:
            time.sleep(1)
        print(f"   {sent:,} requests in {result.seconds:.0f}s ({sent / result.seconds:.0f} req/s), failed: "
              f"{sum(result.failed.values())} {dict(result.failed.most_common(5)) or ''}")
        print(f"   {'':<16}{'before':>10}{'after':>10}")
        print(f"   {'RSS MB':<16}{before[0]:>10.1f}{after[0]:>10.1f}   goal <= {RSS_GOAL_MB}")
        print(f"   {'open fds':<16}{before[1]:>10}{after[1]:>10}")
        print(f"   {'asyncio tasks':<16}{before[2]:>10}{after[2]:>10}")
        print(f"   records: {recorded:,} client requests recorded for {sent:,} sent")
        # Idle upstream connections in the pools may differ by a few.
        if result.failed or after[0] > RSS_GOAL_MB or after[1] > before[1] + 4 or after[2] > before[2] + 2 or recorded != sent:
            status = 1
        print("\nresult: " + ("all goals met" if status == 0 else "a goal was missed (see above)"))
        return status
    except (RuntimeError, OSError) as e:
        print(f"set-up failed: {e}", file=sys.stderr)
        return 2
    finally:
        if gw is not None:
            gw.stop()
        fake.send_signal(signal.SIGTERM)
        fake.wait(10)


if __name__ == "__main__":
    sys.exit(main())
