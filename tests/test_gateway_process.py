"""End to end with gateways of their own: saved flows, extra modes, mitmweb, restarts."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import pytest
import httpx
from mitmproxy import io as mitmio

from tests.conftest import (
    ALL_SECRETS,
    CLAUDE_API_KEY,
    CLAUDE_TOKENS,
    CLIENT_KEY,
    MGMT_KEY,
    claude_file,
    gateway_config,
)
from tests.gateway_proc import ADDON, free_port, start_gateway, start_mitmweb, wait_ready, GatewayProcess

MGMT = {"Authorization": f"Bearer {MGMT_KEY}"}


def _start(tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir, **kw):
    return start_gateway(
        tmp_path,
        gateway_config(claude_up, openai_up, compat_up, gemini_up),
        auth_files={"claude-a@example.com.json": claude_file(CLAUDE_TOKENS[0], "a@example.com")},
        confdir=confdir,
        **kw,
    )


def _ask(gw: GatewayProcess, stream: bool = False) -> str:
    client = anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0)
    kwargs = dict(model="claude-sonnet-4-20250514", max_tokens=16, messages=[{"role": "user", "content": "hi there"}])
    if stream:
        with client.messages.stream(**kwargs) as s:
            return "".join(s.text_stream)
    return client.messages.create(**kwargs).content[0].text


def test_saved_flows_hold_no_secrets(tmp_path, claude_up, openai_up, compat_up, gemini_up, cliproxy_up, confdir):
    flows_path = tmp_path / "flows.mitm"
    gw = _start(
        tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir,
        args=["-w", str(flows_path)], env={"QUOTIO_CLI_PROXY_PORT": str(cliproxy_up.port)},
    )
    try:
        # Passed through to CLIProxyAPI with the client's key, which it needs...
        httpx.get(f"{gw.url}/v1/other", params={"key": CLIENT_KEY}, headers={"x-api-key": CLIENT_KEY})
        assert cliproxy_up.last.headers["x-api-key"] == CLIENT_KEY
        # ...and a refused key, which may be a near miss of a real one.
        httpx.post(f"{gw.url}/v1/messages", headers={"x-api-key": CLIENT_KEY + "x"}, json={})
        _ask(gw)
        _ask(gw, stream=True)
        httpx.post(
            f"{gw.url}/v1beta/models/gemini-2.5-flash:generateContent",
            params={"key": CLIENT_KEY},
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        ).raise_for_status()
        httpx.get(f"{gw.url}/v0/management/auth", headers=MGMT).raise_for_status()
        # The upstream really received the token: masking happens after sending.
        assert claude_up.last.headers["authorization"] == f"Bearer {CLAUDE_TOKENS[0]}"
    finally:
        gw.stop()
    with flows_path.open("rb") as f:
        flows = list(mitmio.FlowReader(f).stream())
    assert len(flows) >= 6
    routed = [f for f in flows if "quotio.provider" in f.metadata]
    assert {f.metadata["quotio.provider"] for f in routed} == {"claude", "gemini"}
    assert all(f.comment.startswith("quotio: ") for f in routed)
    for flow in flows:
        blob = json.dumps(flow.get_state(), default=repr)
        for secret in (*ALL_SECRETS, CLIENT_KEY + "x"):
            assert secret not in blob, (secret, flow.request.path)


def test_user_mode_list_is_kept_and_gateway_added(tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir):
    forward_port = free_port()
    gw = _start(
        tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir, args=["--mode", f"regular@127.0.0.1:{forward_port}"]
    )
    try:
        assert _ask(gw) == "Hello from Claude fake"
        # The user's forward proxy listener inspects an agent's own traffic.
        with httpx.Client(proxy=f"http://127.0.0.1:{forward_port}") as client:
            r = client.post(f"{claude_up.url}/v1/messages/count_tokens", json={"messages": [{"role": "user", "content": "a b"}]})
        assert r.status_code == 200
        assert r.json() == {"input_tokens": 2}
    finally:
        gw.stop()


def test_records_survive_restart(tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir):
    gw = _start(tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir)
    try:
        _ask(gw)
        deadline = time.monotonic() + 5
        while not httpx.get(f"{gw.url}/v0/management/logs", headers=MGMT).json()["logs"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        gw.stop()
    gw2 = _start(tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir)
    try:
        entries = httpx.get(f"{gw2.url}/v0/management/logs", headers=MGMT).json()["logs"]
        assert len(entries) == 1
        assert entries[0]["metadata"]["input_tokens"] == 2
        assert (tmp_path / "quotio.db").exists()
    finally:
        gw2.stop()


def test_stream_is_not_buffered(tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir):
    gw = _start(tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir)
    claude_up.stream_delay = 0.4
    try:
        client = anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0)
        started = time.monotonic()
        arrivals = []
        with client.messages.stream(
            model="claude-sonnet-4-20250514", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            for _ in s.text_stream:
                arrivals.append(time.monotonic() - started)
        # Events are produced 0.4 s apart; a buffering proxy would deliver them all at the end.
        assert len(arrivals) == 4
        assert arrivals[-1] - arrivals[0] > 0.8
    finally:
        claude_up.stream_delay = 0.0
        gw.stop()


def test_loopback_only_without_client_keys_and_passthrough_off(tmp_path, claude_up, confdir):
    gw = start_gateway(
        tmp_path,
        {"upstreams": {"claude": {"base-url": claude_up.url}}},
        auth_files={"claude-a@example.com.json": claude_file(CLAUDE_TOKENS[0], "a@example.com")},
        env={"QUOTIO_PASSTHROUGH_ENABLED": "false"},
        confdir=confdir,
    )
    try:
        # No api-keys configured: a loopback client needs no key at all.
        assert _ask(gw) == "Hello from Claude fake"
        r = httpx.get(f"{gw.url}/v1/unrouted")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"
        # No management key configured: loopback may use management routes.
        assert httpx.get(f"{gw.url}/v0/management/auth").status_code == 200
    finally:
        gw.stop()


def test_bad_config_stops_startup_with_one_line(tmp_path, confdir):
    gw = start_gateway(tmp_path, {"routing": {"strategy": "random"}}, confdir=confdir, wait=False)
    try:
        assert gw.proc.wait(30) != 0
    finally:
        gw.stop()
    log = gw.log()
    assert "config.yaml" in log and "routing.strategy" in log and "round-robin" in log


def test_mitmweb_serves_the_gateway(tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir):
    mitmweb = Path(sys.executable).parent / "mitmweb"
    config = gateway_config(claude_up, openai_up, compat_up, gemini_up)
    import yaml

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "auth").mkdir()
    (tmp_path / "auth" / "claude-a.json").write_text(json.dumps(claude_file(CLAUDE_TOKENS[0], "a@example.com")))
    port, web_port = free_port(), free_port()
    env = {
        "HOME": str(tmp_path),
        "PATH": str(Path(sys.executable).parent),
        "QUOTIO_CONFIG": str(tmp_path / "config.yaml"),
        "QUOTIO_CONFIG_DIR": str(tmp_path),
        "QUOTIO_AUTH_DIR": str(tmp_path / "auth"),
        "QUOTIO_HOST": "127.0.0.1",
        "QUOTIO_PORT": str(port),
    }
    log = tmp_path / "mitmweb.log"
    proc = subprocess.Popen(
        [str(mitmweb), "-s", str(ADDON), "--no-web-open-browser", "--set", f"web_port={web_port}",
         "--set", f"confdir={confdir}"],
        env=env, cwd=tmp_path, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    gw = GatewayProcess(tmp_path, port, proc, log, tmp_path / "auth", tmp_path / "config.yaml")
    try:
        wait_ready(gw)
        assert _ask(gw) == "Hello from Claude fake"
        with socket.create_connection(("127.0.0.1", web_port), timeout=5):
            pass
    finally:
        gw.stop()


def test_proxy_url_per_key_and_direct(tmp_path, claude_up, openai_up, confdir):
    from tests.fakes.connect_proxy import ConnectProxy

    with ConnectProxy() as proxy:
        config = {
            "proxy-url": proxy.url,
            "claude-api-key": [
                {"api-key": "sk-ant-via-proxy", "prefix": "proxied"},
                {"api-key": "sk-ant-direct", "prefix": "direct", "proxy-url": "direct"},
                {"api-key": "sk-ant-socks", "prefix": "socks", "proxy-url": "socks5://127.0.0.1:1"},
            ],
            "upstreams": {"claude": {"base-url": claude_up.url}},
        }
        gw = start_gateway(tmp_path, config, confdir=confdir)
        try:
            client = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)

            def ask(prefix):
                return client.messages.create(
                    model=f"{prefix}/claude-sonnet-4-20250514", max_tokens=8,
                    messages=[{"role": "user", "content": "hi"}],
                )

            # Alternate on one client connection: a direct request must not
            # inherit the previous request's proxy, nor the other way round.
            for prefix in ("proxied", "direct", "proxied", "direct"):
                ask(prefix)
            assert set(proxy.tunnels) == {f"127.0.0.1:{claude_up.port}"}
            assert proxy.requests == 2
            keys = [r.headers["x-api-key"] for r in claude_up.requests]
            assert keys == ["sk-ant-via-proxy", "sk-ant-direct"] * 2
            with pytest.raises(anthropic.APIStatusError) as e:
                ask("socks")
            assert e.value.status_code == 502
            assert "socks5" in e.value.message
        finally:
            gw.stop()


def test_mitmweb_keeps_only_the_newest_flows(tmp_path, claude_up, confdir):
    """`web-max-flows` bounds what mitmweb holds, so a day of traffic cannot exhaust memory."""

    config = {"claude-api-key": [{"api-key": CLAUDE_API_KEY}], "upstreams": {"claude": {"base-url": claude_up.url}},
              "web-max-flows": 5}
    gw, web_port = start_mitmweb(tmp_path, config, confdir, "flowcap-test")
    try:
        client = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)
        for i in range(12):
            client.messages.create(model="claude-sonnet-4-5", max_tokens=8,
                                   messages=[{"role": "user", "content": f"question {i}"}])
        flows = httpx.get(f"http://127.0.0.1:{web_port}/flows",
                          headers={"authorization": "Bearer flowcap-test"}, timeout=5).json()
        assert len(flows) <= 6  # the limit, plus the flow still in flight at the last trim
        bodies = [f["request"]["contentLength"] for f in flows if f["request"]["path"] == "/v1/messages"]
        assert bodies, flows
        # The oldest went first: the newest question is still there.
        kept = [httpx.get(f"http://127.0.0.1:{web_port}/flows/{f['id']}/request/content.data",
                          headers={"authorization": "Bearer flowcap-test"}, timeout=5).text
                for f in flows if f["request"]["path"] == "/v1/messages"]
        assert any("question 11" in k for k in kept) and not any("question 0\"" in k for k in kept)
    finally:
        gw.stop()
