"""The fault matrix: what clients and upstreams do wrong, through the real mitmdump.

Every cell is one client request (the official SDK of its format, retries as
shipped) while one upstream misbehaves, or one client misbehaving against a
healthy upstream. Each cell asserts three things:

- what the client saw: the answer whenever a healthy credential exists,
  otherwise an error in its own API's shape (a JSON error, or an error event
  once a stream has begun), and never a hang;
- the pool afterwards: a cooldown (and for 5xx and connection faults a
  breaker strike) on the credential that failed, and nothing at all when the
  client was the one who left;
- the record rows: the failed attempt's status and error, the final status,
  499 "client closed" for a hang-up.

The outcomes are written to docs/fault-matrix.md (linked from the README)
when the whole matrix ran, and printed at the end of the run.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.fakes.upstreams import FakeUpstream, closed_port
from tests.gateway_proc import GatewayProcess, start_gateway

KEY = "matrix-client-key-0123456789"
MGMT = "matrix-mgmt-key-0123456789"
REPLY = "all good here"
IDLE = 1.0
DOC = Path(__file__).resolve().parent.parent / "docs" / "fault-matrix.md"


# --- the gateway under test ------------------------------------------------------------


@dataclass
class Rig:
    gw: GatewayProcess
    fakes: dict[str, FakeUpstream]
    db: Path

    def mgmt(self, method: str, path: str, **kw) -> httpx.Response:
        r = httpx.request(method, self.gw.url + "/v0/management" + path,
                          headers={"authorization": f"Bearer {MGMT}"}, timeout=10, **kw)
        r.raise_for_status()
        return r

    def rows(self, since: float, settle: float = 0.15) -> list[dict]:
        """Record rows from `since`, once the writer has caught up (no new row for `settle` s)."""
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with sqlite3.connect(self.db) as con:
                con.row_factory = sqlite3.Row
                rows = [dict(r) for r in con.execute(
                    "SELECT * FROM requests WHERE ts >= ? AND route NOT LIKE '/v0/%' ORDER BY ts, attempt", [since])]
            if len(rows) != last:
                last, stable_since = len(rows), time.monotonic()
            elif rows and time.monotonic() - stable_since >= settle:
                return rows
            time.sleep(0.05)
        return rows

    def fresh(self) -> None:
        for fake in self.fakes.values():
            fake.clear()
            fake.reply_text = REPLY
            fake.stream_delay = 0.0
        self.mgmt("POST", "/reset-quota")


@pytest.fixture(scope="module")
def rig(tmp_path_factory, confdir) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("matrix")
    dead = f"http://127.0.0.1:{closed_port()}"
    with FakeUpstream(REPLY) as claude, FakeUpstream(REPLY) as chat, FakeUpstream(REPLY) as codex:
        def keys(name: str, base: str, dead_base: str, **extra) -> list[dict]:
            # Two healthy keys; under the prefix "dead/", a refusing key tried first, then a healthy one.
            return [
                {"api-key": f"sk-{name}-a", "base-url": base, **extra},
                {"api-key": f"sk-{name}-b", "base-url": base, **extra},
                {"api-key": f"sk-{name}-dead", "base-url": dead_base, "prefix": "dead", "priority": 10, **extra},
                {"api-key": f"sk-{name}-c", "base-url": base, "prefix": "dead", **extra},
            ]
        codex_file = {"type": "codex", "email": "x@example.com", "account_id": "acct", "expired": "2099-01-01T00:00:00Z"}
        gw = start_gateway(
            root,
            {
                "api-keys": [KEY],
                "remote-management": {"secret-key": MGMT},
                "max-retry-interval": 1,
                "timeouts": {"idle-seconds": IDLE},
                "claude-api-key": keys("claude", claude.url, dead),
                "codex-api-key": keys("chat", chat.url + "/v1", dead + "/v1", models=[{"name": "gpt-4o"}]),
                "upstreams": {"codex": {"base-url": codex.url + "/backend-api/codex"}},
            },
            auth_files={
                "codex-a.json": {**codex_file, "access_token": "codex-token-a"},
                "codex-b.json": {**codex_file, "access_token": "codex-token-b"},
                "codex-dead.json": {**codex_file, "access_token": "codex-token-dead", "prefix": "dead",
                                    "priority": 10, "base_url": dead},
                "codex-c.json": {**codex_file, "access_token": "codex-token-c", "prefix": "dead"},
            },
            confdir=confdir,
        )
        try:
            yield Rig(gw, {"claude": claude, "chat": chat, "codex": codex}, root / "quotio.db")
        finally:
            gw.stop()


# --- clients: each format's official SDK ----------------------------------------------------


class Incomplete(Exception):
    """The SDK returned, but the answer lacks its end: the gateway should have said why."""


class StreamFailed(Exception):
    """The stream said it failed, in its own format (the Responses SDK yields these as events)."""


def ask_anthropic(url: str, model: str, stream: bool) -> str:
    kw = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}
    with anthropic.Anthropic(base_url=url, api_key=KEY, timeout=20) as client:
        if stream:
            with client.messages.stream(**kw) as s:
                msg = s.get_final_message()
        else:
            msg = client.messages.create(**kw)
    if msg.stop_reason is None:
        raise Incomplete("no stop_reason")
    return "".join(b.text for b in msg.content if b.type == "text")


def ask_chat(url: str, model: str, stream: bool) -> str:
    kw = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    with openai.OpenAI(base_url=url + "/v1", api_key=KEY, timeout=20) as client:
        if not stream:
            return client.chat.completions.create(**kw).choices[0].message.content
        text, finished = "", False
        for chunk in client.chat.completions.create(**kw, stream=True):
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finished = finished or choice.finish_reason is not None
    if not finished:
        raise Incomplete("no finish_reason")
    return text


def ask_responses(url: str, model: str, stream: bool) -> str:
    kw = {"model": model, "input": "hello"}
    with openai.OpenAI(base_url=url + "/v1", api_key=KEY, timeout=20) as client:
        if not stream:
            return client.responses.create(**kw).output_text
        text, done = "", False
        for event in client.responses.create(**kw, stream=True):
            if event.type == "response.output_text.delta":
                text += event.delta
            elif event.type == "response.completed":
                done = True
            elif event.type in ("error", "response.failed"):
                raise StreamFailed(event.type)
    if not done:
        raise Incomplete("no response.completed")
    return text


ASK: dict[str, Callable[[str, str, bool], str]] = {
    "anthropic": ask_anthropic,
    "openai": ask_chat,
    "responses": ask_responses,
}


def client_saw(fn: Callable[[], str]) -> tuple[str, float]:
    """("ok", seconds) for the reply, else what kind of error the SDK raised."""
    started = time.monotonic()
    try:
        text = fn()
    except (anthropic.APIStatusError, openai.APIStatusError) as e:
        shaped = isinstance(e.body, dict)
        outcome = f"error {e.status_code}" + ("" if shaped else " (not JSON)")
        if e.status_code == 200:
            outcome = "error event"
    except (anthropic.APIConnectionError, openai.APIConnectionError) as e:
        outcome = f"transport error ({type(e.__cause__ or e).__name__})"
    except (anthropic.APIError, openai.APIError, StreamFailed):
        outcome = "error event"
    except Incomplete as e:
        outcome = f"incomplete answer ({e})"
    else:
        outcome = "ok" if text == REPLY else f"wrong text {text!r}"
    return outcome, time.monotonic() - started


# --- the matrix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    client: str
    model: str
    fake: str
    label: str


PAIRS = (
    Pair("anthropic", "claude-sonnet-4-5", "claude", "Claude (same format)"),
    Pair("anthropic", "gpt-4o", "chat", "OpenAI Chat (translated)"),
    Pair("openai", "gpt-4o", "chat", "OpenAI Chat (same format)"),
    Pair("openai", "claude-sonnet-4-5", "claude", "Claude (translated)"),
    Pair("responses", "gpt-5", "codex", "Codex Responses (same format)"),
    Pair("responses", "claude-sonnet-4-5", "claude", "Claude (translated)"),
)


@dataclass(frozen=True)
class Upstream:
    name: str
    arm: Callable[[FakeUpstream], None] | None
    # Status of the attempt that met the fault (None: nothing fails).
    fault: int | None = None
    strikes: bool = False
    # A fault that strikes after the stream began: a stream client sees an error event.
    mid_stream: bool = False
    refuse: bool = False


UPSTREAMS = (
    Upstream("200", None),
    Upstream("429 + Retry-After", lambda f: f.fail_next(429, headers={"retry-after": "1"}), 429),
    Upstream("429, no Retry-After", lambda f: f.fail_next(429, headers={"retry-after": None}), 429),
    Upstream("500", lambda f: f.fail_next(500), 500, strikes=True),
    Upstream("502", lambda f: f.fail_next(502), 502, strikes=True),
    Upstream("503", lambda f: f.fail_next(503), 503, strikes=True),
    Upstream("529", lambda f: f.fail_next(529), 529, strikes=True),
    Upstream("connection refused", None, 502, strikes=True, refuse=True),
    Upstream("reset before headers", lambda f: f.fault_next("reset"), 502, strikes=True),
    Upstream("reset mid-stream", lambda f: f.fault_next("reset_mid"), 502, strikes=True, mid_stream=True),
    Upstream("headers, then silence past the idle timeout",
             lambda f: f.fault_next("stall", seconds=IDLE + 3), 504, strikes=True, mid_stream=True),
    Upstream("a trickle: an event every 0.25 s", lambda f: f.fault_next("trickle", seconds=0.25)),
    Upstream("malformed SSE", lambda f: f.fault_next("malformed"), 502, strikes=True, mid_stream=True),
    Upstream("truncated JSON / early end", lambda f: f.fault_next("truncated"), 502, strikes=True, mid_stream=True),
    Upstream("gzip-encoded answer", lambda f: f.fault_next("gzip")),
)


@dataclass
class Cell:
    client: str
    provider: str
    mode: str
    client_does: str
    upstream_does: str
    saw: str = ""
    pool: str = ""
    records: str = ""


RESULTS: list[Cell] = []
EXPECTED_CELLS = len(PAIRS) * 2 * len(UPSTREAMS)


def _pool_state(rig: Rig) -> tuple[dict[str, str], dict[str, int]]:
    pool = rig.mgmt("GET", "/pool").json()
    cooling = {c["credential_id"]: str(c.get("status") or c.get("reason")) for c in pool["cooldowns"]}
    strikes = {k: v["failures"] for k, v in pool["breakers"].items() if not k.startswith("host:") and v["failures"]}
    return cooling, strikes


def _describe_pool(cooling: dict[str, str], strikes: dict[str, int], faulted: str | None) -> str:
    if not cooling and not strikes:
        return "untouched"
    parts = []
    if faulted in cooling:
        parts.append("failed credential cooling")
    if faulted in strikes:
        parts.append("its breaker struck")
    others = (set(cooling) | set(strikes)) - {faulted}
    if others:
        parts.append(f"{len(others)} other credential(s) touched")
    return ", ".join(parts)


def _describe_rows(rows: list[dict]) -> str:
    requests = len({r["request_id"] for r in rows})
    statuses = " → ".join(str(r["status"]) for r in rows)
    return f"{statuses} ({requests} request{'s' if requests != 1 else ''}, {len(rows)} row{'s' if len(rows) != 1 else ''})"


MATRIX = [(p, mode, u) for p in PAIRS for mode in ("stream", "non-stream") for u in UPSTREAMS]


@pytest.mark.parametrize(
    ("pair", "mode", "up"), MATRIX,
    ids=[f"{p.client}-{p.model}-{m}-{u.name}" for p, m, u in MATRIX],
)
def test_upstream_faults(rig: Rig, pair: Pair, mode: str, up: Upstream):
    rig.fresh()
    fake = rig.fakes[pair.fake]
    if up.arm is not None:
        up.arm(fake)
    model = f"dead/{pair.model}" if up.refuse else pair.model
    stream = mode == "stream"
    since = time.time()
    saw, took = client_saw(lambda: ASK[pair.client](rig.gw.url, model, stream))
    rows = rig.rows(since)
    cooling, strikes = _pool_state(rig)

    client_error = up.mid_stream and stream
    expect_saw = "error event" if client_error else "ok"
    assert saw == expect_saw, f"client saw {saw}"
    assert took < 15, "the client waited too long"

    assert rows, "no record"
    assert all(r["status"] != 499 for r in rows), "nobody hung up"
    faulted = next((r for r in rows if r["status"] == up.fault), None)
    if up.fault is None:
        assert [r["status"] for r in rows] == [200]
        assert not cooling and not strikes, (cooling, strikes)
    else:
        assert faulted is not None, [r["status"] for r in rows]
        assert faulted["error"], "the failed attempt says why"
        cred = faulted["credential_id"]
        assert cred in cooling, f"{cred} should cool: {cooling}"
        assert (cred in strikes) == up.strikes, (cred, strikes)
        # Only the failed credential is touched.
        assert set(cooling) | set(strikes) == {cred}, (cooling, strikes)
    final = rows[-1]
    assert final["status"] == (up.fault if client_error else 200), _describe_rows(rows)
    if not client_error:
        assert final["error"] is None

    RESULTS.append(Cell(pair.client, pair.label, mode, "reads to the end", up.name, saw,
                        _describe_pool(cooling, strikes, faulted["credential_id"] if faulted else None),
                        _describe_rows(rows)))


# --- clients that misbehave, against a healthy upstream ------------------------------------


def _post(rig: Rig, pair: Pair, stream: bool) -> tuple[str, dict]:
    if pair.client == "anthropic":
        return "/v1/messages", {"model": pair.model, "max_tokens": 64, "stream": stream,
                                "messages": [{"role": "user", "content": "hello"}]}
    if pair.client == "openai":
        return "/v1/chat/completions", {"model": pair.model, "stream": stream,
                                        "messages": [{"role": "user", "content": "hello"}]}
    return "/v1/responses", {"model": pair.model, "stream": stream, "input": "hello"}


def _headers() -> dict[str, str]:
    return {"authorization": f"Bearer {KEY}", "x-api-key": KEY, "content-type": "application/json"}


def _upstream_cancelled(fake: FakeUpstream, before: int, within: float = 1.5) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if fake.cancelled > before:
            return True
        time.sleep(0.02)
    return False


def hang_up_before_headers(rig: Rig, pair: Pair, fake: FakeUpstream) -> str:
    fake.fault_next("hang", seconds=10)
    before = fake.cancelled
    path, body = _post(rig, pair, True)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(rig.gw.url + path, json=body, headers=_headers(), timeout=httpx.Timeout(10, read=0.5))
    assert _upstream_cancelled(fake, before), "the upstream request was left open"
    return "gave up waiting after 0.5 s"


def hang_up_mid_stream(rig: Rig, pair: Pair, fake: FakeUpstream) -> str:
    fake.stream_delay = 0.3
    before = fake.cancelled
    path, body = _post(rig, pair, True)
    with httpx.stream("POST", rig.gw.url + path, json=body, headers=_headers(), timeout=10) as r:
        assert r.status_code == 200
        for _ in zip(range(2), r.iter_lines()):
            pass
    assert _upstream_cancelled(fake, before), "the upstream stream was left open"
    return "read two lines, then closed"


def hang_up_after_the_last_event(rig: Rig, pair: Pair, fake: FakeUpstream) -> str:
    # Like an OpenAI SDK closing at [DONE] or Codex at response.completed: the
    # answer is whole, the body not yet over (the fake lingers before its end).
    fake.stream_delay = 0.15
    path, body = _post(rig, pair, True)
    last = {"anthropic": "message_stop", "openai": "[DONE]", "responses": "response.completed"}[pair.client]
    with httpx.stream("POST", rig.gw.url + path, json=body, headers=_headers(), timeout=10) as r:
        for line in r.iter_lines():
            if last in line:
                break
    return "closed at the closing event"


def read_slowly(rig: Rig, pair: Pair, fake: FakeUpstream) -> str:
    fake.reply_text = " ".join(["word"] * 40)
    path, body = _post(rig, pair, True)
    got = b""
    with httpx.stream("POST", rig.gw.url + path, json=body, headers=_headers(), timeout=10) as r:
        for chunk in r.iter_raw(64):
            got += chunk
            time.sleep(0.005)
    assert got.count(b"word") >= 40
    return "64 bytes every 5 ms"


def send_body_slowly(rig: Rig, pair: Pair, fake: FakeUpstream) -> str:
    status = _slow_body(rig, pair, finish=True)
    assert status.startswith(b"HTTP/1.1 200"), status
    return "body in 5 pieces over 0.75 s"


def send_body_slowly_then_hang_up(rig: Rig, pair: Pair, fake: FakeUpstream) -> str:
    assert _slow_body(rig, pair, finish=False) == b""
    assert not fake.requests, "half a request went upstream"
    return "half the body, then closed"


def _slow_body(rig: Rig, pair: Pair, finish: bool) -> bytes:
    path, body = _post(rig, pair, False)
    raw = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"x-api-key: {KEY}\r\nauthorization: Bearer {KEY}\r\ncontent-length: {len(raw)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", rig.gw.port), timeout=10) as s:
        s.sendall(head)
        pieces = [raw[i * len(raw) // 5:(i + 1) * len(raw) // 5] for i in range(5)]
        for piece in pieces if finish else pieces[:2]:
            s.sendall(piece)
            time.sleep(0.15)
        if not finish:
            return b""
        return s.recv(64)


@dataclass(frozen=True)
class ClientDoes:
    name: str
    act: Callable[[Rig, Pair, FakeUpstream], str]
    upstream: str
    # The record's final status.
    status: int
    stream: bool = True
    routed: bool = True


CLIENTS = (
    ClientDoes("hangs up before the response headers", hang_up_before_headers, "slow: no answer for 10 s", 499),
    ClientDoes("hangs up mid-stream", hang_up_mid_stream, "200, an event every 0.3 s", 499),
    ClientDoes("hangs up right after the closing event", hang_up_after_the_last_event,
               "200, an event every 0.15 s", 200),
    ClientDoes("reads slowly", read_slowly, "200, 40 words at once", 200),
    ClientDoes("sends its body slowly", send_body_slowly, "200", 200, stream=False),
    ClientDoes("sends half its body, then hangs up", send_body_slowly_then_hang_up, "(never reached)", 499,
               stream=False, routed=False),
)
CLIENT_PAIRS = (PAIRS[0], PAIRS[3], PAIRS[4])
CLIENT_MATRIX = [(p, c) for p in CLIENT_PAIRS for c in CLIENTS]


@pytest.mark.parametrize(
    ("pair", "does"), CLIENT_MATRIX, ids=[f"{p.client}-{p.model}-{c.name}" for p, c in CLIENT_MATRIX]
)
def test_client_behaviours(rig: Rig, pair: Pair, does: ClientDoes):
    rig.fresh()
    fake = rig.fakes[pair.fake]
    since = time.time()
    started = time.monotonic()
    detail = does.act(rig, pair, fake)
    assert time.monotonic() - started < 15
    rows = rig.rows(since, settle=0.3)
    cooling, strikes = _pool_state(rig)
    assert not cooling and not strikes, f"a client's doing touched the pool: {cooling} {strikes}"
    assert [r["status"] for r in rows] == [does.status], _describe_rows(rows)
    row = rows[0]
    if does.status == 499:
        assert row["error"].startswith("client closed"), row["error"]
    else:
        assert row["error"] is None, row["error"]
    assert (row["credential_id"] is not None) == does.routed
    RESULTS.append(Cell(pair.client, pair.label, "stream" if does.stream else "non-stream",
                        f"{does.name} ({detail})", does.upstream, "(left)" if does.status == 499 else "ok",
                        _describe_pool(cooling, strikes, None), _describe_rows(rows)))


def test_a_client_leaving_during_a_retry_cancels_it_at_once(rig: Rig):
    """The gateway retries a 429 itself for a non-stream client; the client leaves meanwhile."""
    rig.fresh()
    fake = rig.fakes["claude"]
    fake.fail_next(429, headers={"retry-after": "30"})
    fake.fault_next("hang", seconds=10)  # the retry on the other key hangs
    since = time.time()
    before = fake.cancelled
    path, body = _post(rig, PAIRS[0], False)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(rig.gw.url + path, json=body, headers=_headers(), timeout=httpx.Timeout(10, read=1.0))
    assert _upstream_cancelled(fake, before), "the retry's upstream request was left open"
    assert len(fake.requests) == 2
    rows = rig.rows(since, settle=0.5)
    assert [r["status"] for r in rows] == [429, 499]
    assert rows[1]["error"].startswith("client closed")
    cooling, strikes = _pool_state(rig)
    # The key that answered 429 cools; the one the client abandoned does not.
    assert set(cooling) == {rows[0]["credential_id"]} and not strikes
    RESULTS.append(Cell("anthropic", PAIRS[0].label, "non-stream",
                        "hangs up while the gateway retries a 429 (after 1 s)", "429, then no answer", "(left)",
                        "only the 429 credential cooling", _describe_rows(rows)))


# --- the table --------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _write_table() -> Iterator[None]:
    RESULTS.clear()
    yield
    if not RESULTS:
        return
    lines = [
        "| client | provider | mode | client | upstream | client saw | pool after | records (status per attempt) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {c.client} | {c.provider} | {c.mode} | {c.client_does} | {c.upstream_does} | {c.saw} | {c.pool} | {c.records} |"
        for c in RESULTS
    ]
    table = "\n".join(lines)
    print("\n\nFault matrix\n" + table)
    if len(RESULTS) == EXPECTED_CELLS + len(CLIENT_MATRIX) + 1:
        DOC.write_text(HEADER + table + "\n")


HEADER = """# The fault matrix

Written by `tests/test_fault_matrix.py` on every full run of `make test`: one
row per cell, each through the real `mitmdump` with the format's official SDK
(its retries as shipped) against fake upstreams that speak each provider's
wire format. A pool has two healthy credentials per provider (three, with one
refusing connections, for "connection refused").

- **client saw**: `ok` is the whole answer; `error event` is an error in the
  stream's own format after the stream began (nothing can be retried once the
  client has part of an answer); a JSON error would show as `error <status>`.
- **pool after**: cooldowns and breaker strikes; a client's own doing never
  touches the pool.
- **records**: the status of every attempt in order; 499 is a client that
  hung up (nginx's convention), counted as cancelled, not as an error.

"""
