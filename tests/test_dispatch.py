"""addons/dispatch.py: quotio's stages as one addon, and a dispatch that skips idle addons.

Unit tests drive a real mitmproxy AddonManager (taddons); the end-to-end ones
check that built-in features a user turns on still act on gateway flows, and
that `quotio_fast_dispatch=false` serves as before.
"""

from __future__ import annotations

import asyncio

import anthropic
import httpx
import pytest
from mitmproxy import exceptions
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.addons.anticache import AntiCache
from mitmproxy.addons.maplocal import MapLocal
from mitmproxy.test import taddons, tflow

from addons.dispatch import FastDispatch, Stages
from tests.conftest import CLAUDE_TOKENS, CLIENT_KEY, claude_file, gateway_config
from tests.gateway_proc import start_gateway


class Recorder:
    def __init__(self, name: str, calls: list[str]):
        self.name, self.calls = name, calls

    def request(self, flow) -> None:
        self.calls.append(f"{self.name}.request")


class AsyncRecorder(Recorder):
    async def response(self, flow) -> None:
        await asyncio.sleep(0)
        self.calls.append(f"{self.name}.response")


class Broken:
    def request(self, flow) -> None:
        raise ValueError("boom")


class Halting:
    def request(self, flow) -> None:
        raise exceptions.AddonHalt()


def test_stages_call_each_hook_in_listed_order_and_only_where_defined():
    calls: list[str] = []
    stages = Stages([Recorder("a", calls), AsyncRecorder("b", calls), Recorder("c", calls)])
    flow = tflow.tflow()
    stages.request(flow)
    asyncio.run(stages.response(flow))
    assert calls == ["a.request", "b.request", "c.request", "b.response"]
    # No stage has an error hook, so mitmproxy never calls Stages for it.
    assert not hasattr(stages, "error")
    assert "Recorder" in repr(stages)


def test_a_failing_stage_is_logged_and_the_next_still_runs(caplog):
    calls: list[str] = []
    stages = Stages([Broken(), Recorder("after", calls)])
    stages.request(tflow.tflow())
    assert calls == ["after.request"]
    assert "Broken.request failed" in caplog.text


def test_addon_halt_stops_the_chain():
    calls: list[str] = []
    stages = Stages([Halting(), Recorder("after", calls)])
    with pytest.raises(exceptions.AddonHalt):
        stages.request(tflow.tflow())
    assert calls == []


class Counting:
    def __init__(self):
        self.requests = 0

    def request(self, flow) -> None:
        self.requests += 1


def test_fast_dispatch_calls_handlers_and_skips_idle_builtins(monkeypatch):
    counting = Counting()
    anticache = AntiCache()
    with taddons.context(anticache, counting) as tctx:
        fast = FastDispatch(tctx.master.addons)
        fast.install()
        seen = []
        monkeypatch.setattr(anticache, "request", lambda flow: seen.append(flow))
        flow = tflow.tflow()
        asyncio.run(tctx.master.addons.trigger_event(HttpRequestHook(flow)))
        assert counting.requests == 1
        assert seen == []  # anticache is off
        tctx.options.anticache = True
        asyncio.run(tctx.master.addons.trigger_event(HttpRequestHook(flow)))
        assert counting.requests == 2
        assert seen == [flow]  # turned on: called at once
        fast.uninstall()
        assert tctx.master.addons.trigger_event != fast


def test_fast_dispatch_sees_addons_added_later():
    with taddons.context() as tctx:
        fast = FastDispatch(tctx.master.addons)
        fast.install()
        flow = tflow.tflow()
        asyncio.run(tctx.master.addons.trigger_event(HttpRequestHook(flow)))
        late = Counting()
        tctx.master.addons.add(late)
        asyncio.run(tctx.master.addons.trigger_event(HttpRequestHook(flow)))
        assert late.requests == 1


def test_a_users_addon_named_like_a_builtin_is_always_called():
    class MapLocal(Counting):  # noqa: F811 - the clash is the point
        replacements = []

    theirs = MapLocal()
    with taddons.context(theirs) as tctx:
        FastDispatch(tctx.master.addons).install()
        asyncio.run(tctx.master.addons.trigger_event(HttpRequestHook(tflow.tflow())))
        assert theirs.requests == 1


def test_the_builtin_map_local_is_idle_until_configured():
    from addons.dispatch import _idle_test

    builtin = MapLocal()
    with taddons.context(builtin) as tctx:
        idle = _idle_test(builtin)
        assert idle is not None and idle(builtin)
        tctx.configure(builtin, map_local=["|/x|/tmp"])
        assert not idle(builtin)


def _start(tmp_path, ups, confdir, args):
    return start_gateway(
        tmp_path,
        gateway_config(*ups),
        auth_files={"claude-a@example.com.json": claude_file(CLAUDE_TOKENS[0], "a@example.com")},
        confdir=confdir,
        args=args,
    )


def _ask(url: str) -> str:
    client = anthropic.Anthropic(base_url=url, api_key=CLIENT_KEY, max_retries=0)
    msg = client.messages.create(
        model="claude-sonnet-4-20250514", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    return msg.content[0].text


def test_builtin_features_a_user_turns_on_still_act_on_gateway_flows(
    tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir
):
    local = tmp_path / "local.txt"
    local.write_text("served from a local file")
    gw = _start(
        tmp_path, (claude_up, openai_up, compat_up, gemini_up), confdir,
        ["--set", "modify_headers=/~s/x-added-by-user/yes", "--set", f"map_local=|/mapped-by-user|{local}"],
    )  # fmt: skip
    try:
        assert _ask(gw.url) == "Hello from Claude fake"
        r = httpx.post(
            gw.url + "/v1/messages",
            headers={"x-api-key": CLIENT_KEY},
            json={"model": "claude-sonnet-4-20250514", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
        )
        assert r.status_code == 200 and r.headers["x-added-by-user"] == "yes"
        mapped = httpx.get(gw.url + "/mapped-by-user", headers={"x-api-key": CLIENT_KEY})
        assert mapped.text == "served from a local file"
    finally:
        gw.stop()


def test_mitmproxys_own_dispatch_still_serves(tmp_path, claude_up, openai_up, compat_up, gemini_up, confdir):
    gw = _start(tmp_path, (claude_up, openai_up, compat_up, gemini_up), confdir, ["--set", "quotio_fast_dispatch=false"])
    try:
        assert _ask(gw.url) == "Hello from Claude fake"
        r = httpx.post(gw.url + "/v1/messages", headers={"x-api-key": "wrong"}, json={})
        assert r.status_code == 401
    finally:
        gw.stop()
