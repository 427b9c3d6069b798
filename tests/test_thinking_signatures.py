"""Claude thinking signatures across accounts, through the real mitmdump.

Anthropic accepts a thinking block's signature only from the account that
wrote it (the fake does the same with `account_signatures`). An agent session
must keep working when it lands on another account: Claude OAuth pools keep a
named session on its account, and when it moves anyway (a cooldown, a
failover) the foreign thinking is dropped on the new account, once refused and
from then on before it is sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.conftest import CLAUDE_TOKENS, CLIENT_KEY, MGMT_KEY, claude_file
from tests.fakes.upstreams import FakeUpstream
from tests.gateway_proc import GatewayProcess, start_gateway

MODEL = "claude-sonnet-4-5"


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream("the answer", thinking="let me think about it") as fake:
        fake.account_signatures = True
        yield fake


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, up) -> Iterator[GatewayProcess]:
    g = start_gateway(
        tmp_path_factory.mktemp("signatures"),
        {"api-keys": [CLIENT_KEY], "remote-management": {"secret-key": MGMT_KEY},
         "upstreams": {"claude": {"base-url": up.url}}},
        auth_files={
            "claude-a.json": claude_file(CLAUDE_TOKENS[0], "a@example.com"),
            "claude-b.json": claude_file(CLAUDE_TOKENS[1], "b@example.com"),
        },
        confdir=confdir,
    )
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def _fresh(gw, up):
    up.clear()
    mgmt = {"authorization": f"Bearer {MGMT_KEY}"}
    httpx.post(gw.url + "/v0/management/reset-quota", headers=mgmt)
    httpx.delete(gw.url + "/v0/management/logs", headers=mgmt)


class Agent:
    """A multi-turn conversation with thinking on, as Claude Code holds one."""

    def __init__(self, gw: GatewayProcess, session: str | None, stream: bool = True):
        headers = {"x-claude-code-session-id": session} if session else {}
        self.client = anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, default_headers=headers)
        self.messages: list[dict] = []
        self.stream = stream

    def turn(self, text: str) -> anthropic.types.Message:
        self.messages.append({"role": "user", "content": text})
        kw = {"model": MODEL, "max_tokens": 4096, "messages": self.messages,
              "thinking": {"type": "enabled", "budget_tokens": 1024}}
        if self.stream:
            with self.client.messages.stream(**kw) as s:
                msg = s.get_final_message()
        else:
            msg = self.client.messages.create(**kw)
        self.messages.append({"role": "assistant", "content": [b.model_dump() for b in msg.content]})
        return msg


def account(up: FakeUpstream) -> str:
    return up.last.headers["authorization"]


def statuses(gw: GatewayProcess, n: int) -> list[int]:
    time.sleep(0.3)
    logs = httpx.get(gw.url + f"/v0/management/logs?limit={n}", headers={"authorization": f"Bearer {MGMT_KEY}"}).json()
    return [entry["status"] for entry in reversed(logs["logs"])]


def test_a_named_session_stays_on_its_account(gw, up):
    agent = Agent(gw, "session-stays")
    first = agent.turn("one")
    assert first.content[0].type == "thinking"
    home = account(up)
    for text in ("two", "three", "four"):
        assert agent.turn(text).content[-1].text == "the answer"
        assert account(up) == home
    assert all(r.path == "/v1/messages" for r in up.requests)
    assert statuses(gw, 4) == [200] * 4


@pytest.mark.parametrize("stream", [True, False])
def test_a_session_moved_by_a_cooldown_keeps_working(gw, up, stream):
    agent = Agent(gw, f"session-moves-{stream}", stream=stream)
    agent.turn("one")
    home = account(up)
    up.fail_next(429, headers={"retry-after": "30"})  # its account cools: the session must move
    assert agent.turn("two").content[-1].text == "the answer"
    moved = account(up)
    assert moved != home
    # The new account refused the old signatures once; the retry went without them.
    sent = up.requests[-1].json
    assert not any(b.get("type") == "thinking" for b in sent["messages"][1]["content"])
    # Later turns go there directly, keeping the new account's own thinking.
    before = len(up.requests)
    assert agent.turn("three").content[-1].text == "the answer"
    assert len(up.requests) == before + 1, "a later turn was refused again"
    later = up.requests[-1].json["messages"]
    assert not any(b.get("type") == "thinking" for b in later[1]["content"])
    assert later[3]["content"][0]["type"] == "thinking"
    assert account(up) == moved


def test_without_a_session_id_a_foreign_signature_costs_one_retry(gw, up):
    # Round-robin moves an anonymous conversation between accounts every turn.
    agent = Agent(gw, None, stream=False)
    for text in ("one", "two", "three"):
        assert agent.turn(text).content[-1].text == "the answer"
    codes = statuses(gw, 10)
    assert codes.count(200) == 3 and set(codes) <= {200, 400}
