"""The credential pool under failure, through the real mitmdump and SDKs."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.conftest import claude_file
from tests.fakes.upstreams import FakeUpstream, closed_port
from tests.gateway_proc import GatewayProcess, start_gateway

TOKENS = ("sk-ant-oat01-pool-aaaa", "sk-ant-oat01-pool-bbbb")
MODEL = "claude-sonnet-4-20250514"


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream("pool answer") as f:
        yield f


def _start(root, confdir, up, **config) -> GatewayProcess:
    return start_gateway(
        root,
        {"upstreams": {"claude": {"base-url": up.url}}, **config},
        auth_files={
            "claude-a.json": claude_file(TOKENS[0], "a@example.com"),
            "claude-b.json": claude_file(TOKENS[1], "b@example.com"),
        },
        confdir=confdir,
    )


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, up) -> Iterator[GatewayProcess]:
    g = _start(tmp_path_factory.mktemp("pool"), confdir, up, **{"request-retry": 3, "max-retry-interval": 2})
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def _fresh(request, up):
    up.clear()
    gw = request.getfixturevalue("gw") if "gw" in request.fixturenames else None
    yield
    if gw is not None:
        httpx.post(gw.url + "/v0/management/reset-quota").raise_for_status()


def token(req) -> str:
    return req.headers["authorization"].removeprefix("Bearer ")


def ask(gw, model=MODEL, retries=0, stream=False):
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=retries)
    kw = dict(model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    if stream:
        with client.messages.stream(**kw) as s:
            return "".join(s.text_stream)
    return client.messages.create(**kw).content[0].text


def pool(gw) -> dict:
    return httpx.get(gw.url + "/v0/management/pool").json()


def logs(gw, limit=20) -> list[dict]:
    return httpx.get(gw.url + "/v0/management/logs", params={"limit": limit}).json()["logs"]


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    return predicate()


def test_non_stream_request_fails_over_inside_the_gateway(gw, up):
    up.fail_next(429)
    assert ask(gw) == "pool answer"  # the SDK does not retry (max_retries=0)
    first, second = up.requests
    assert token(first) != token(second)
    def attempts():
        by_request: dict[str, list[dict]] = {}
        for row in logs(gw):
            by_request.setdefault(row["requestId"], []).append(row)
        return next((rows for rows in by_request.values() if len(rows) == 2), None)

    by_attempt = {r["metadata"]["attempt"]: r for r in wait_for(attempts)}
    assert by_attempt[1]["status"] == 429 and by_attempt[2]["status"] == 200
    assert by_attempt[1]["metadata"]["credential_id"] != by_attempt[2]["metadata"]["credential_id"]
    cooling = pool(gw)["cooldowns"]
    assert [c["credential_id"] for c in cooling] == [by_attempt[1]["metadata"]["credential_id"]]


def test_streaming_sdk_retries_onto_the_next_credential_natively(gw, up):
    up.fail_next(429)
    assert ask(gw, retries=2, stream=True) == "pool answer"
    first, second = up.requests
    assert token(first) != token(second)
    assert second.json["stream"] is True


def test_account_wide_quota_is_not_picked_for_another_model(gw, up):
    up.fault_next("quota", headers={"retry-after": "600"})
    ask(gw, model="claude-opus-4-20250514")  # fails over inside the gateway
    exhausted = token(up.requests[0])
    entry = pool(gw)["cooldowns"][0]
    assert entry["scope"] == "account" and entry["model"] is None
    up.clear()
    for model in ("claude-haiku-4-5", "claude-3-7-sonnet-20250219", MODEL):
        ask(gw, model=model)
    assert exhausted not in {token(r) for r in up.requests}


def test_all_cooling_is_a_429_with_reset_seconds(gw, up):
    up.fault_next("quota", times=2, headers={"retry-after": "3600"})  # both exhausted for an hour
    with pytest.raises(anthropic.RateLimitError) as e:
        ask(gw)
    assert len(up.requests) == 2
    up.clear()
    with pytest.raises(anthropic.RateLimitError) as e:
        ask(gw)
    err = e.value.body["error"]
    assert err["code"] == "model_cooldown"
    assert err["provider"] == "claude"
    assert 3500 < err["reset_seconds"] <= 3600
    assert int(e.value.response.headers["retry-after"]) == err["reset_seconds"]
    assert up.requests == []  # nothing was sent while everything cools


def test_cooldown_ends_on_time_and_success_clears_it(gw, up):
    up.fail_next(429, headers={"retry-after": "1"}, times=2)
    with pytest.raises(anthropic.RateLimitError):
        ask(gw)  # both accounts 429: the client gets the last answer
    assert len(pool(gw)["cooldowns"]) == 2
    with pytest.raises(anthropic.RateLimitError) as e:
        ask(gw)
    assert e.value.body["error"]["code"] == "model_cooldown"
    time.sleep(1.2)
    assert ask(gw) == "pool answer"
    assert pool(gw)["cooldowns"] == []


def test_round_robin_shares_load_evenly(gw, up):
    for _ in range(6):
        ask(gw)
    assert Counter(token(r) for r in up.requests) == {TOKENS[0]: 3, TOKENS[1]: 3}


def test_breaker_opens_after_consecutive_failures_and_reset_closes_it(gw, up):
    up.fail_next(500, times=20)
    # Different models each time, so the per-model cooldowns do not hide the breakers.
    failures = 0
    for i in range(5):
        try:
            ask(gw, model=f"claude-a-{i}")
        except anthropic.InternalServerError:
            failures += 1
        except anthropic.RateLimitError as e:
            assert e.body["error"]["code"] == "model_cooldown"
            break
    assert failures >= 2
    breakers = pool(gw)["breakers"]
    # Both accounts share one upstream host: its breaker opened after five failures.
    assert breakers[f"host:{up.url.removeprefix('http://')}"]["state"] == "open"
    with pytest.raises(anthropic.RateLimitError) as e:
        ask(gw, model="claude-fresh-model")  # no attempt: the host's breaker is open
    assert e.value.body["error"]["code"] == "model_cooldown"
    up.clear()
    httpx.post(gw.url + "/v0/management/reset-quota").raise_for_status()
    assert {b["state"] for b in pool(gw)["breakers"].values()} == {"closed"}
    assert ask(gw) == "pool answer"


def test_connection_refused_credential_is_skipped(tmp_path, confdir, up):
    dead = f"http://127.0.0.1:{closed_port()}"
    g = start_gateway(
        tmp_path,
        {"claude-api-key": [{"api-key": "sk-dead", "base-url": dead}, {"api-key": "sk-live", "base-url": up.url}]},
        confdir=confdir,
    )
    try:
        for _ in range(4):  # the SDK retries mitmproxy's 502 onto the live key
            assert ask(g, retries=2) == "pool answer"
        assert {r.headers["x-api-key"] for r in up.requests} == {"sk-live"}
        cooling = pool(g)["cooldowns"]
        assert [c["credential_id"] for c in cooling] == ["claude-api-key[0]"]
    finally:
        g.stop()


def test_cooldown_survives_a_restart(tmp_path, confdir, up):
    g = _start(tmp_path, confdir, up)
    try:
        up.fault_next("quota", headers={"retry-after": "3600"})
        ask(g)
        cooled = pool(g)["cooldowns"][0]["credential_id"]
    finally:
        g.stop()
    g = _start(tmp_path, confdir, up)
    try:
        entry = pool(g)["cooldowns"][0]
        assert entry["credential_id"] == cooled and entry["reset_seconds"] > 3000
        up.clear()
        ask(g)
        ask(g)
        assert len({token(r) for r in up.requests}) == 1  # the cooled account stays out
        r = httpx.post(g.url + "/v0/management/reset-quota", json={"id": cooled})
        assert r.json()["cleared"] == 1
        assert pool(g)["cooldowns"] == []
    finally:
        g.stop()


def test_session_affinity_keeps_a_session_on_one_credential(tmp_path, confdir, up):
    g = _start(tmp_path, confdir, up, routing={"session-affinity": True, "session-affinity-ttl": "10m"})
    try:
        client = anthropic.Anthropic(base_url=g.url, api_key="k", max_retries=0)
        for session in ("s-1", "s-2"):
            for _ in range(3):
                client.messages.create(
                    model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}],
                    extra_headers={"x-claude-code-session-id": session},
                )
        used = [token(r) for r in up.requests]
        assert len(set(used[:3])) == 1 and len(set(used[3:])) == 1
    finally:
        g.stop()


def test_client_hanging_up_mid_stream_closes_the_upstream(tmp_path, confdir):
    with FakeUpstream("one two three four five six seven eight", stream_delay=0.3) as slow:
        g = start_gateway(tmp_path, {"upstreams": {"claude": {"base-url": slow.url}}},
                          auth_files={"claude-a.json": claude_file(TOKENS[0], "a@example.com")}, confdir=confdir)
        try:
            for _ in range(3):
                with httpx.stream(
                    "POST", g.url + "/v1/messages",
                    json={"model": MODEL, "max_tokens": 16, "stream": True,
                          "messages": [{"role": "user", "content": "hi"}]},
                ) as r:
                    for _ in zip(range(3), r.iter_lines()):
                        pass  # read a little, then hang up
            assert slow.wait_connections(0, timeout=10), "an upstream connection was left open"
            assert slow.cancelled >= 1  # the fake saw a client go away mid-stream
        finally:
            g.stop()


def test_stalled_upstream_is_cut_after_the_idle_timeout(tmp_path, confdir):
    with FakeUpstream("never sent") as hung:
        g = start_gateway(tmp_path, {"upstreams": {"claude": {"base-url": hung.url}}, "timeouts": {"idle-seconds": 1}},
                          auth_files={"claude-a.json": claude_file(TOKENS[0], "a@example.com")}, confdir=confdir)
        try:
            hung.fault_next("hang", seconds=20)
            started = time.monotonic()
            with pytest.raises(anthropic.APIStatusError) as e:
                ask(g)
            assert time.monotonic() - started < 10
            # The gateway gave up on the upstream (504 in Anthropic's shape); the client did not time out.
            assert e.value.status_code == 504
            assert e.value.body["error"]["message"] == "the upstream did not answer in time"
            assert hung.wait_connections(0, timeout=10)
        finally:
            g.stop()


def test_host_breaker_keeps_other_credentials_off_a_failing_host(tmp_path, confdir, up):
    dead = f"http://127.0.0.1:{closed_port()}"
    keys = [{"api-key": f"sk-dead-{i}", "base-url": dead, "models": [{"name": f"claude-m{i}"}]} for i in range(6)]
    keys.append({"api-key": "sk-dead-late", "base-url": dead, "models": [{"name": "claude-late"}]})
    # Cooling off: only the breakers can hold a key back here.
    g = start_gateway(tmp_path, {"claude-api-key": keys, "disable-cooling": True}, confdir=confdir)
    try:
        for i in range(6):  # six different keys fail on one host: its breaker opens
            with pytest.raises(anthropic.APIStatusError):
                ask(g, model=f"claude-m{i}")
        host_breakers = {k: v for k, v in pool(g)["breakers"].items() if k.startswith("host:")}
        assert [v["state"] for v in host_breakers.values()] == ["open"]
        # Another key on that host, never used: its first attempt (learns the host) is let through,
        # then it is held back by the host's open breaker like the rest.
        with pytest.raises(anthropic.APIStatusError):
            ask(g, model="claude-late")
        with pytest.raises(anthropic.RateLimitError) as e:
            ask(g, model="claude-late")
        assert e.value.body["error"]["code"] == "model_cooldown"
    finally:
        g.stop()


def _unaccepting_listener():
    """A loopback port whose accept queue is full: new connects hang in SYN."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the (tiny) backlog; these are never accepted
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    return server, fillers, f"http://127.0.0.1:{port}"


def test_connect_and_first_byte_timeouts_end_the_attempt(tmp_path, confdir):
    server, fillers, blackhole = _unaccepting_listener()
    with FakeUpstream("never sent") as hung:
        g = start_gateway(
            tmp_path,
            {
                "claude-api-key": [
                    {"api-key": "sk-blackhole", "base-url": blackhole, "models": [{"name": "claude-hole"}]},
                    {"api-key": "sk-hung", "base-url": hung.url, "models": [{"name": "claude-hung"}]},
                ],
                "timeouts": {"connect-seconds": 1, "first-byte-seconds": 1},
            },
            confdir=confdir,
        )
        try:
            for model in ("claude-hole", "claude-hung"):
                if model == "claude-hung":
                    hung.fault_next("hang", seconds=20)
                started = time.monotonic()
                with pytest.raises(anthropic.APIStatusError) as e:
                    ask(g, model=model)
                # A deadline of the gateway's: 504 Gateway Timeout, in the client's shape.
                assert e.value.status_code == 504
                assert e.value.body["error"]["type"] == "api_error"
                assert time.monotonic() - started < 8, model
            cooling = {c["credential_id"] for c in pool(g)["cooldowns"]}
            assert cooling == {"claude-api-key[0]", "claude-api-key[1]"}
            assert hung.wait_connections(0, timeout=10)
        finally:
            g.stop()
            server.close()
            for c in fillers:
                c.close()


def test_reset_before_headers_is_retried_onto_the_other_account(gw, up):
    up.fault_next("reset")
    assert ask(gw, retries=2) == "pool answer"  # the SDK retries the gateway's 502
    first, second = up.requests
    assert token(first) != token(second)
    assert [c["status"] for c in pool(gw)["cooldowns"]] == [0]  # a connection failure, cooling 60 s


@pytest.mark.parametrize(
    ("strategy", "weights", "expected"),
    [("fill-first", (1, 1), {"sk-w0": 8}), ("weighted-round-robin", (3, 1), {"sk-w0": 6, "sk-w1": 2})],
)
def test_strategies_share_load_as_configured(tmp_path, confdir, strategy, weights, expected):
    with FakeUpstream("shared") as fake:
        keys = [{"api-key": f"sk-w{i}", "weight": w} for i, w in enumerate(weights)]
        g = start_gateway(
            tmp_path,
            {"claude-api-key": keys, "routing": {"strategy": strategy}, "upstreams": {"claude": {"base-url": fake.url}}},
            confdir=confdir,
        )
        try:
            for _ in range(8):
                ask(g)
            assert Counter(r.headers["x-api-key"] for r in fake.requests) == expected
        finally:
            g.stop()
