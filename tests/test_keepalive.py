"""SSE keep-alive comments while an upstream stream is silent, through the real gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from tests.conftest import CLIENT_KEY, claude_file
from tests.fakes.upstreams import FakeUpstream
from tests.gateway_proc import GatewayProcess, start_gateway

TOKEN = "sk-ant-oat01-keepalive-kkkk"


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream("after a long think the answer") as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, up) -> Iterator[GatewayProcess]:
    config = {
        "api-keys": [CLIENT_KEY],
        "upstreams": {"claude": {"base-url": up.url}},
        "timeouts": {"keepalive-seconds": 0.3},
    }
    g = start_gateway(tmp_path_factory.mktemp("keepalive-gw"), config, confdir=confdir,
                      auth_files={"claude-k.json": claude_file(TOKEN, "k@example.com")})
    yield g
    g.stop()


def raw_stream(gw: GatewayProcess, path: str, body: dict, headers: dict) -> tuple[bytes, list[float]]:
    """The client's bytes and when each chunk arrived."""
    chunks, times = [], []
    with httpx.stream("POST", gw.url + path, json=body, headers=headers, timeout=20) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            chunks.append(chunk)
            times.append(time.monotonic())
    return b"".join(chunks), times


def test_a_silent_native_stream_gets_comments_and_stays_valid(gw, up):
    up.fault_next("stall", events=1, seconds=1.5)
    body = {"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "think hard"}]}
    raw, _ = raw_stream(gw, "/v1/messages", body, {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"})
    assert raw.count(b": keep-alive\n\n") >= 3
    assert raw.index(b"event: message_start") < raw.index(b": keep-alive")
    assert raw.rstrip().endswith(b'data: {"type":"message_stop"}') or b"message_stop" in raw


def test_a_silent_translated_stream_gets_comments_the_sdk_ignores(gw, up):
    up.fault_next("stall", events=1, seconds=1.2)
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=CLIENT_KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="claude-sonnet-4-5", stream=True, messages=[{"role": "user", "content": "think"}]
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "after a long think the answer"


def test_the_anthropic_sdk_reads_through_the_comments(gw, up):
    up.fault_next("stall", events=2, seconds=1.0)
    client = anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=50,
                                messages=[{"role": "user", "content": "x"}]) as s:
        assert "".join(s.text_stream) == "after a long think the answer"


def test_a_lively_stream_gets_none(gw, up):
    body = {"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "quick"}]}
    raw, _ = raw_stream(gw, "/v1/messages", body, {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"})
    assert b"keep-alive" not in raw
    # The gateway keeps serving normally afterwards, and never tripped over a tick.
    assert httpx.get(f"{gw.url}/health", timeout=5).status_code == 200
    assert "crashed" not in gw.log() and "Unexpected event" not in gw.log()
