"""Gateway overhead benchmark: bare mitmdump vs. the quotio gateway (`make bench`).

In one run it measures, against the same fake Anthropic upstream:

* bare     `mitmdump --mode reverse:http://127.0.0.1:<fake>@127.0.0.1:<port>`
           (connection_strategy=lazy, quiet termlog, flow_detail=0), which
           buffers whole bodies: the reference for the json cells,
* bare-stream  the same with stream_large_bodies=1, passing each SSE event on
           as it arrives like the gateway does: the reference for the sse cells,
* gateway  `mitmdump -s addons/quotio.py` with every addon on, started the way
           tests/gateway_proc.py starts it: a `claude-api-key` routed to the
           fake via `upstreams.claude.base-url`, a client key in `api-keys`,
           records going to a temporary SQLite db,
* translated  (unless `--no-translated`) a second gateway whose model is served
           by an OpenAI Chat Completions upstream: every request and SSE event
           translated, beside the peers doing the same translation
           (scripts/bench_peers.py): claude-code-router when `node` is on PATH
           (installed from npm into the temp dir), LiteLLM's proxy when
           BENCH_PEERS=1 (pip-installed into a scratch venv). A peer that cannot
           be installed or started is skipped with one line saying why,

for POST /v1/messages non-stream (json) and SSE (`"stream": true`) at each
concurrency (default 1 and 16). The fake upstream runs in its own process
(`python -m tests.fakes.serve`), each mitmdump in its own, and this script is
the load generator (asyncio + one keep-alive httpx.AsyncClient per cell).

Each cell runs a fixed warm-up, then a fixed measured window; only requests
that complete inside the window count. Bare and gateway cells of the same
(mode, concurrency) run back to back, in alternating order, and the whole
matrix is repeated `--repeat` times; the table shows medians, and the
gateway/bare ratios are computed from those medians (the `range` column is
the spread of the per-repeat pair ratios).

Goals (GOALS below): same format >= 0.9 x bare req/s, translated >= 0.85 x,
and at most 0.3 ms of added p50 at concurrency 1. Missing one is reported,
not fatal: the exit status is 0 unless a request failed (non-2xx, transport
error or a truncated SSE stream), then 1; 2 if the setup failed, 130 on Ctrl-C.
Every process it starts is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import select
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx

from tests.gateway_proc import MITMDUMP, GatewayProcess, free_port, start_gateway, wait_ready

CLIENT_KEY = "bench-client-key-0123456789"
CLAUDE_API_KEY = "sk-ant-api03-bench-key-0000"
MODEL = "claude-sonnet-4-20250514"
PATH = "/v1/messages"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# processes


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen
    url: str
    log_path: Path | None = None

    def log_tail(self, n: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


def stop_proc(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    except ProcessLookupError:
        pass


def start_fake(tmp: Path, reply: str, procs: list[Proc], always_status: int = 0, name: str = "fake") -> Proc:
    log_path = tmp / f"{name}.log"
    extra = ["--always-status", str(always_status)] if always_status else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve", "--port", "0", "--reply", reply, *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log_path.open("w"),
    )
    proc_obj = Proc(name, proc, "", log_path)
    procs.append(proc_obj)  # registered before waiting, so an interrupt still stops it
    # The first stdout line names the port; don't block forever if it dies.
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + 20
    buf = b""
    while b"\n" not in buf and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fake upstream exited with {proc.returncode}:\n{proc_obj.log_tail()}")
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
    line = buf.decode(errors="replace").split("\n", 1)[0]
    if not line.startswith("listening on "):
        stop_proc(proc)
        raise RuntimeError(f"fake upstream did not come up: {buf!r}\n{proc_obj.log_tail()}")
    proc_obj.url = line.removeprefix("listening on ").strip()
    return proc_obj


def wait_http(p: Proc, path: str, timeout: float = 30) -> None:
    """Ready once anything answers over HTTP (bare mitmdump relays the fake's 404)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.proc.poll() is not None:
            raise RuntimeError(f"{p.name} exited with {p.proc.returncode}:\n{p.log_tail()}")
        try:
            httpx.get(p.url + path, timeout=1, trust_env=False)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{p.name} did not come up in {timeout}s:\n{p.log_tail()}")


def start_bare(
    tmp: Path, fake_url: str, confdir: Path, procs: list[Proc], extra_sets: list[str], name: str = "bare"
) -> Proc:
    port = free_port()
    log_path = tmp / f"{name}.log"
    cmd = [
        str(MITMDUMP),
        "--mode", f"reverse:{fake_url}@127.0.0.1:{port}",
        "--set", "connection_strategy=lazy",
        "--set", "termlog_verbosity=warn",
        "--set", "flow_detail=0",
        "--set", f"confdir={confdir}",
    ]  # fmt: skip
    for opt in extra_sets:
        cmd += ["--set", opt]
    proc = subprocess.Popen(
        cmd, cwd=tmp, env={**os.environ, "HOME": str(tmp)},
        stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    p = Proc(name, proc, f"http://127.0.0.1:{port}", log_path)
    procs.append(p)
    wait_http(p, "/")
    return p


def start_gw(
    tmp: Path, fake_url: str, confdir: Path, procs: list[Proc], failing_url: str | None = None,
    translated: bool = False,
) -> tuple[Proc, Path]:
    """The gateway; with `failing_url`, a second key whose upstream always answers 429.

    Cooling is off in that set-up, so every other request really takes the
    failover path (with cooling on, the exhausted key would simply be skipped).
    `translated`: the model is served by an OpenAI Chat Completions upstream
    (an `openai-compatibility` entry), so every request and SSE event is translated.
    """
    name = "gateway-failover" if failing_url else "translated" if translated else "gateway"
    root = tmp / name
    db = root / "records.db"
    config = {
        "api-keys": [CLIENT_KEY],
        "claude-api-key": [{"api-key": CLAUDE_API_KEY}],
        "upstreams": {"claude": {"base-url": fake_url}},
        "records-db": str(db),
    }
    if translated:
        del config["claude-api-key"]
        config["openai-compatibility"] = [{
            "name": "bench", "base-url": fake_url + "/v1",
            "api-key-entries": [{"api-key": "sk-bench-compat"}],
            "models": [{"name": "gpt-bench", "alias": MODEL}],
        }]  # fmt: skip
    if failing_url:
        config["claude-api-key"] = [
            {"api-key": CLAUDE_API_KEY + "-exhausted", "base-url": failing_url},
            {"api-key": CLAUDE_API_KEY},
        ]
        config["disable-cooling"] = True
    gw: GatewayProcess = start_gateway(
        root,
        config,
        env={"QUOTIO_DB": str(db)},
        # (gateway_proc also sets quotio_auth_scan_ms=200, the tests' fast auth-dir
        # scan; mitmdump refuses a second --set of it. An empty dir is cheap to scan.)
        confdir=confdir,
        wait=False,
    )
    p = Proc(name, gw.proc, gw.url, gw.log_path)
    procs.append(p)
    wait_ready(gw)
    return p, db


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


# ---------------------------------------------------------------------------
# load generation


def request_body(stream: bool) -> bytes:
    return json.dumps(
        {
            "model": MODEL,
            "max_tokens": 256,
            "messages": [{"role": "user", "content": "Say hello and tell me about the weather today."}],
            "stream": stream,
        }
    ).encode()


HEADERS = {
    "x-api-key": CLIENT_KEY,
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}


@dataclass
class CellResult:
    rps: float
    p50: float
    p99: float
    ttfb_p50: float | None
    ok: int  # completed inside the measured window
    total_ok: int  # every successful request, warm-up and overrun included
    errors: int  # any failed request, warm-up included
    error_kinds: Counter
    proxy_cpu: float  # proxy process CPU, % of one core, over the window
    fake_cpu: float
    gen_cpu: float


def pct(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[i]


async def run_cell(
    url: str, mode: str, conc: int, warmup: float, duration: float, proxy_pid: int | None, fake_pid: int,
    headers: dict[str, str] = HEADERS,
) -> CellResult:
    sse = mode == "sse"
    body = request_body(sse)
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc, keepalive_expiry=60)
    lat: list[float] = []
    ttfb: list[float] = []
    errors = Counter()
    n_err = 0
    n_ok = 0
    cpu: dict[str, tuple[float, float, float]] = {}

    def sample() -> tuple[float, float, float]:
        return (cpu_seconds(proxy_pid) if proxy_pid else 0.0, cpu_seconds(fake_pid), self_cpu())

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, trust_env=False) as client:
        t0 = time.perf_counter()
        m_start, m_end = t0 + warmup, t0 + warmup + duration

        async def sampler() -> None:
            await asyncio.sleep(max(0.0, m_start - time.perf_counter()))
            cpu["start"] = sample()
            await asyncio.sleep(max(0.0, m_end - time.perf_counter()))
            cpu["end"] = sample()

        async def one() -> tuple[bool, float | None, str]:
            if not sse:
                r = await client.post(PATH, content=body, headers=headers)
                return 200 <= r.status_code < 300, None, f"HTTP {r.status_code}"
            first = None
            tail = b""
            async with client.stream("POST", PATH, content=body, headers=headers) as r:
                async for chunk in r.aiter_raw():
                    if first is None:
                        first = time.perf_counter()
                    tail = (tail + chunk)[-256:]
            if not 200 <= r.status_code < 300:
                return False, first, f"HTTP {r.status_code}"
            if b"message_stop" not in tail:
                return False, first, "SSE stream ended before message_stop"
            return True, first, ""

        async def worker() -> None:
            nonlocal n_err, n_ok
            while True:
                start = time.perf_counter()
                if start >= m_end or _stopping:
                    return
                try:
                    ok, first, why = await one()
                except httpx.HTTPError as e:
                    ok, first, why = False, None, f"{type(e).__name__}: {e}"[:120]
                end = time.perf_counter()
                if not ok:
                    n_err += 1
                    errors[why] += 1
                    await asyncio.sleep(0.01)  # don't spin on a dead target
                    continue
                n_ok += 1
                if m_start <= end <= m_end:
                    lat.append((end - start) * 1000)
                    if first is not None:
                        ttfb.append((first - start) * 1000)

        await asyncio.gather(sampler(), *(worker() for _ in range(conc)))

    lat.sort()
    ttfb.sort()
    (p0, f0, g0), (p1, f1, g1) = cpu["start"], cpu["end"]
    return CellResult(
        rps=len(lat) / duration,
        p50=pct(lat, 0.50),
        p99=pct(lat, 0.99),
        ttfb_p50=pct(ttfb, 0.50) if sse else None,
        ok=len(lat),
        total_ok=n_ok,
        errors=n_err,
        error_kinds=errors,
        proxy_cpu=(p1 - p0) / duration * 100,
        fake_cpu=(f1 - f0) / duration * 100,
        gen_cpu=(g1 - g0) / duration * 100,
    )


def sanity_check(name: str, url: str, headers: dict[str, str] = HEADERS) -> None:
    """One request per mode before measuring, so a broken setup fails loudly and early."""
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as c:
        r = c.post(PATH, content=request_body(False), headers=headers)
        if r.status_code != 200 or r.json().get("type") != "message":
            raise RuntimeError(f"{name}: non-stream sanity request got {r.status_code}: {r.text[:300]}")
        r = c.post(PATH, content=request_body(True), headers=headers)
        if r.status_code != 200 or "message_stop" not in r.text:
            raise RuntimeError(f"{name}: SSE sanity request got {r.status_code}: {r.text[:300]}")


# ---------------------------------------------------------------------------
# report


@dataclass
class Agg:
    runs: list[CellResult] = field(default_factory=list)

    def med(self, attr: str) -> float | None:
        vals = [getattr(r, attr) for r in self.runs if getattr(r, attr) is not None]
        return statistics.median(vals) if vals else None

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)


def fmt(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def machine_info() -> list[str]:
    import mitmproxy.version

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return [
        f"machine: nproc={affinity} (cpu_count={os.cpu_count()}) {cpu_model}".rstrip(),
        f"         {platform.system()} {platform.release()} {platform.machine()}, loadavg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"python:  {platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        f"mitmproxy {mitmproxy.version.VERSION}, httpx {httpx.__version__}",
    ]


# Goals per target, as a ratio of bare mitmdump's req/s in the same cell.
GOALS = {"gateway": 0.9, "translated": 0.85}
# Added p50 latency at concurrency 1 over bare mitmdump, goal for the non-stream cell.
ADDED_P50_GOAL_MS = 0.3


def print_table(
    args: argparse.Namespace, targets: list[str], results: dict[tuple[str, str, int], Agg]
) -> list[tuple[str, str, int]]:
    """Prints the table; returns the (target, mode, concurrency) cells that miss their goal."""
    headers = [
        "target", "mode", "conc", "req/s", "p50 ms", "p99 ms", "ttfb p50", "errors",
        "cpu% proxy/fake/gen", "cpu ms/req", "x bare req/s", "range", "p50 +ms", "",
    ]  # fmt: skip
    rows: list[list[str]] = []
    misses: list[tuple[str, str, int]] = []
    for mode in args.modes:
        for conc in args.concurrency:
            # The gateway streams SSE as it arrives; bare mitmdump buffers whole bodies unless told.
            bare = results.get(("bare-stream", mode, conc)) or results.get(("bare", mode, conc))
            for target in targets:
                a = results.get((target, mode, conc))
                if a is None:
                    continue
                rps, cpu = a.med("rps"), a.med("proxy_cpu")
                per_req = cpu / 100 / rps * 1000 if rps and cpu is not None and target != "direct" else None
                row = [
                    target, mode, str(conc), fmt(rps, ".0f"), fmt(a.med("p50"), ".2f"),
                    fmt(a.med("p99"), ".2f"), fmt(a.med("ttfb_p50"), ".2f") if mode == "sse" else "",
                    str(a.errors),
                    "/".join(fmt(a.med(k), ".0f") if (k != "proxy_cpu" or target != "direct") else "-"
                             for k in ("proxy_cpu", "fake_cpu", "gen_cpu")),
                    fmt(per_req, ".2f"), "", "", "", "",
                ]  # fmt: skip
                if target not in ("bare", "bare-stream", "direct") and bare and bare.med("rps"):
                    ratio = rps / bare.med("rps")
                    pair = [g.rps / b.rps for g, b in zip(a.runs, bare.runs) if b.rps]
                    row[10] = f"{ratio:.2f}"
                    row[11] = f"{min(pair):.2f}-{max(pair):.2f}" if pair else "-"
                    row[12] = f"{a.med('p50') - bare.med('p50'):+.2f}"
                    goal = GOALS.get(target)
                    if goal is not None:
                        ok = ratio >= goal
                        row[13] = f"ok (>= {goal})" if ok else f"<-- MISS (< {goal})"
                        if not ok:
                            misses.append((target, mode, conc))
                rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    right = {3, 4, 5, 6, 7, 8, 9, 10, 12}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(line(headers))
    print(line(["-" * w for w in widths]))
    prev = None
    for r in rows:
        if prev is not None and (r[1], r[2]) != prev:
            print()
        prev = (r[1], r[2])
        print(line(r))
    return misses


def peer_lines(
    args: argparse.Namespace, targets: list[str], results: dict[tuple[str, str, int], Agg]
) -> list[str]:
    """quotio translated vs. each peer on the same cells: req/s ratio and p50 difference."""
    lines = []
    for peer in (t for t in targets if t in ("claude-code-router", "litellm")):
        cells = []
        for mode in args.modes:
            for conc in args.concurrency:
                ours, theirs = results[("translated", mode, conc)], results[(peer, mode, conc)]
                if ours.med("rps") and theirs.med("rps"):
                    cells.append(
                        f"{mode} c={conc} {ours.med('rps') / theirs.med('rps'):.2f}x req/s,"
                        f" p50 {ours.med('p50') - theirs.med('p50'):+.2f} ms"
                    )
        if cells:
            lines.append(f"quotio translated vs {peer}: " + "; ".join(cells))
    return lines


def records_in(db: Path) -> int | None:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM requests").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return None


# ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark the quotio gateway against bare mitmdump (see module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell (not measured)")
    p.add_argument("--concurrency", default="1,16", help="comma-separated concurrency levels")
    p.add_argument("--modes", default="json,sse", help="comma-separated: json, sse")
    p.add_argument("--repeat", type=int, default=3, help="repeats of every cell; the table shows medians")
    p.add_argument("--reply-words", type=int, default=16, help="words in the fake's reply (one SSE delta each)")
    p.add_argument("--direct", action="store_true", help="also measure the fake upstream with no proxy")
    p.add_argument(
        "--no-translated",
        dest="translated",
        action="store_false",
        help="skip the translated row (Anthropic client, OpenAI Chat Completions upstream)",
    )
    p.add_argument(
        "--peers", choices=("auto", "none", "all"), default="auto",
        help="translated-path peers: auto = claude-code-router when node is present, LiteLLM too when"
        " BENCH_PEERS=1; all = both; none = neither",
    )  # fmt: skip
    p.add_argument(
        "--no-failover",
        dest="failover",
        action="store_false",
        help="skip the failover row (two keys, one always answering 429)",
    )
    p.add_argument(
        "--bare-set", action="append", default=[], metavar="OPTION=VALUE",
        help="extra mitmproxy --set for the bare mitmdump, e.g. stream_large_bodies=1 (bare"
        " mitmdump buffers SSE bodies by default; the gateway streams them)",
    )  # fmt: skip
    p.add_argument("--pause", type=float, default=0.2, help="idle seconds between cells")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, records db)")
    args = p.parse_args(argv)
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        p.error("--concurrency takes integers, e.g. 1,16")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.concurrency or min(args.concurrency) < 1:
        p.error("--concurrency needs positive integers")
    if not args.modes or set(args.modes) - {"json", "sse"}:
        p.error("--modes takes json and/or sse")
    if args.duration <= 0 or args.warmup < 0 or args.repeat < 1 or args.reply_words < 1:
        p.error("need --duration > 0, --warmup >= 0, --repeat >= 1, --reply-words >= 1")
    return args


_stopping = False


def _interrupt(signum: int, frame: Any) -> None:
    # Our own handler rather than asyncio.run's: that one only cancels the main
    # task, and httpx/anyio cancel scopes can swallow such a cancellation.
    global _stopping
    _stopping = True
    raise KeyboardInterrupt


import bench_peers  # noqa: E402  (scripts/ is on sys.path when run as a script)
import bench_translate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _interrupt)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

    wanted_peers = [
        (name, start) for name, start, wanted in (
            ("claude-code-router", bench_peers.start_ccr, args.translated and args.peers != "none"),
            ("litellm", bench_peers.start_litellm,
             args.translated and (args.peers == "all" or os.environ.get("BENCH_PEERS") == "1")),
        ) if wanted
    ]  # fmt: skip
    targets = (
        (["direct"] if args.direct else []) + ["bare"] + (["bare-stream"] if "sse" in args.modes else [])
        + ["gateway"]
        + (["translated"] if args.translated else []) + [name for name, _ in wanted_peers]
        + (["failover"] if args.failover else [])
    )
    n_cells = len(targets) * len(args.modes) * len(args.concurrency) * args.repeat
    est = n_cells * (args.warmup + args.duration + args.pause)
    print("quotio gateway benchmark: POST /v1/messages through bare mitmdump vs. the gateway")
    for line in machine_info():
        print(line)
    print(
        f"plan: {len(args.modes)} modes x concurrency {args.concurrency} x {len(targets)} targets"
        f" x {args.repeat} repeats = {n_cells} cells of {args.warmup:g}s warm-up + {args.duration:g}s"
        f" measured (~{est:.0f}s + start-up); reply {args.reply_words} words"
    )
    if args.bare_set:
        print("bare mitmdump extra options: " + " ".join(f"--set {o}" for o in args.bare_set))
    print("goals: " + ", ".join(f"{t} req/s >= {g} x bare" for t, g in GOALS.items()), flush=True)

    tmpdir = tempfile.TemporaryDirectory(prefix="quotio-bench-", delete=not args.keep_tmp)
    tmp = Path(tmpdir.name)
    confdir = tmp / "mitmproxy-conf"
    procs: list[Proc] = []
    results: dict[tuple[str, str, int], Agg] = {}
    interrupted = False
    gw_db: Path | None = None
    gw_ok_total = 0
    peers: list[bench_peers.Peer] = []
    headers: dict[str, dict[str, str]] = {}
    try:
        t_setup = time.monotonic()
        reply = " ".join(f"word{i}" for i in range(args.reply_words))
        fake = start_fake(tmp, reply, procs)
        # The first mitmdump creates the CA in confdir; the second reuses it.
        bare = start_bare(tmp, fake.url, confdir, procs, args.bare_set)
        gw, gw_db = start_gw(tmp, fake.url, confdir, procs)
        urls = {"direct": fake.url, "bare": bare.url, "gateway": gw.url}
        pids = {"direct": None, "bare": bare.proc.pid, "gateway": gw.proc.pid}
        if "bare-stream" in targets:
            bs = start_bare(tmp, fake.url, confdir, procs, [*args.bare_set, "stream_large_bodies=1"], "bare-stream")
            urls["bare-stream"], pids["bare-stream"] = bs.url, bs.proc.pid
        if args.translated:
            tr, _ = start_gw(tmp, fake.url, confdir, procs, translated=True)
            urls["translated"], pids["translated"] = tr.url, tr.proc.pid
        if args.failover:
            exhausted = start_fake(tmp, reply, procs, always_status=429, name="fake-429")
            fo, _ = start_gw(tmp, fake.url, confdir, procs, failing_url=exhausted.url)
            urls["failover"], pids["failover"] = fo.url, fo.proc.pid
        for name, start in wanted_peers:
            peer = start(tmp, fake.url + "/v1", lambda msg: print(msg, flush=True))
            if peer is None:
                targets.remove(name)
                continue
            peers.append(peer)
            urls[name], pids[name], headers[name] = peer.url, peer.pid, {**HEADERS, **peer.headers}
        for name in targets:
            sanity_check(name, urls[name], headers.get(name, HEADERS))
        print(
            f"started fake {fake.url} (pid {fake.proc.pid}), bare {bare.url} (pid {bare.proc.pid}),"
            f" gateway {gw.url} (pid {gw.proc.pid}) in {time.monotonic() - t_setup:.1f}s",
            flush=True,
        )

        t_run = time.monotonic()
        for rep in range(args.repeat):
            order = targets if rep % 2 == 0 else targets[::-1]
            for mode in args.modes:
                for conc in args.concurrency:
                    parts = []
                    for target in order:
                        if target == "bare-stream" and mode != "sse":
                            continue
                        for p in procs:
                            if p.proc.poll() is not None:
                                raise RuntimeError(f"{p.name} died (exit {p.proc.returncode}):\n{p.log_tail()}")
                        if _stopping:
                            raise KeyboardInterrupt
                        res = asyncio.run(
                            run_cell(urls[target], mode, conc, args.warmup, args.duration, pids[target],
                                     fake.proc.pid, headers.get(target, HEADERS))
                        )
                        results.setdefault((target, mode, conc), Agg()).runs.append(res)
                        if target == "gateway":
                            gw_ok_total += res.total_ok
                        parts.append(f"{target} {res.rps:.0f}/s p50 {res.p50:.2f}ms cpu {res.proxy_cpu:.0f}/{res.fake_cpu:.0f}/{res.gen_cpu:.0f}%" + (f" ERR {res.errors}" if res.errors else ""))
                        time.sleep(args.pause)
                    print(f"  [{rep + 1}/{args.repeat}] {mode:4} c={conc:<3} " + " | ".join(parts), flush=True)
        print(f"measured in {time.monotonic() - t_run:.0f}s\n")
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted; stopping processes", file=sys.stderr)
    except RuntimeError as e:
        print(f"\nbenchmark setup failed: {e}", file=sys.stderr)
        return 2
    finally:
        if gw_db is not None and not interrupted:
            # Give the gateway's background writer a moment, then report what it stored.
            for _ in range(20):
                n = records_in(gw_db)
                time.sleep(0.25)
                if n is not None and n == records_in(gw_db):
                    break
            # +2: the sanity requests before the first cell
            print(f"gateway records db: {records_in(gw_db)} rows for {gw_ok_total + 2} successful gateway requests")
        for peer in peers:
            peer.stop()
        for p in reversed(procs):
            stop_proc(p.proc)
        if args.keep_tmp:
            print(f"temp dir kept: {tmp}")
        else:
            tmpdir.cleanup()
    if interrupted:
        return 130

    misses = print_table(args, targets, results)
    print()
    # Same run: the translator's per-event cost beside an untranslated stream.
    for line in bench_translate.main():
        print(line)
    print()
    print(
        "req/s, p50, p99, ttfb p50 (time to first body byte, sse only) and cpu% (of one core, over the"
        " measured window, for the proxy / fake upstream / load generator processes) are medians over repeats; errors are summed over all repeats"
        " incl. warm-up. cpu ms/req = proxy CPU per request. x bare ratios come from the medians; range = min-max of"
        " per-repeat ratios; p50 +ms = the median latency added over bare mitmdump. sse rows compare with"
        " bare-stream (mitmdump with stream_large_bodies=1, streaming each event on as the gateway does),"
        " json rows with bare (buffered, as the gateway buffers a JSON answer)."
    )
    if misses:
        print("GOAL MISSED in: " + ", ".join(f"{t} {m} c={c}" for t, m, c in misses))
    else:
        print("goals met: " + ", ".join(f"{t} >= {g} x bare req/s" for t, g in GOALS.items() if t in targets))
    bare_json = results.get(("bare", "json", 1))
    for target, what in (("gateway", "same format"), ("translated", "translated")):
        ours = results.get((target, "json", 1))
        if bare_json and ours:
            added = ours.med("p50") - bare_json.med("p50")
            verdict = "ok" if added <= ADDED_P50_GOAL_MS else "MISS"
            print(f"added p50 at c=1 (json, {what}): {added:+.2f} ms (goal <= {ADDED_P50_GOAL_MS} ms): {verdict}")
    for line in peer_lines(args, targets, results):
        print(line)
    total_errors = sum(a.errors for a in results.values())
    if total_errors:
        print(f"FAILED REQUESTS: {total_errors}")
        for (target, mode, conc), a in sorted(results.items()):
            kinds = Counter()
            for r in a.runs:
                kinds.update(r.error_kinds)
            for why, n in kinds.most_common(5):
                print(f"  {target} {mode} c={conc}: {n} x {why}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
