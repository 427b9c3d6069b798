from __future__ import annotations

import pytest

from quotio_core.pool.affinity import Affinity, session_key

UUID = "0b8f6e9a-3c1d-4e2f-9a7b-5c6d7e8f9a0b"


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"x-claude-code-session-id": UUID}, {}, f"session:{UUID}"),
        ({"session_id": "codex-1"}, {}, "session:codex-1"),
        ({"conversation_id": "conv-9"}, {}, "session:conv-9"),
        ({"session-id": "s-2"}, {}, "session:s-2"),
        # header wins over body hints
        ({"session_id": "h"}, {"prompt_cache_key": "p"}, "session:h"),
        ({}, {"prompt_cache_key": "pck-1", "input": "hi"}, "cache:pck-1"),
        ({}, {"metadata": {"user_id": f"user_abc123_account_{UUID}_session_{UUID}"}}, f"session:{UUID}"),
        ({}, {"metadata": {"user_id": '{"device_id":"d","session_id":"sess-json"}'}}, "session:sess-json"),
        ({"session_id": "  "}, {"prompt_cache_key": "x"}, "cache:x"),  # blank header ignored
    ],
)
def test_session_key_explicit_ids(headers, body, expected) -> None:
    assert session_key(headers, body) == expected


ANTHROPIC = {
    "system": "you are helpful",
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Fix the bug"}]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "more"},
    ],
}
OPENAI = {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "Fix the bug"}]}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "Fix the bug"}]}]}
RESPONSES_LIST = {
    "input": [
        {"type": "message", "role": "developer", "content": "sys"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix the bug"}]},
    ]
}
RESPONSES_STR = {"input": "Fix the bug"}


@pytest.mark.parametrize("body", [ANTHROPIC, OPENAI, GEMINI, RESPONSES_LIST, RESPONSES_STR])
def test_first_user_message_hash_is_shape_independent(body) -> None:
    key = session_key({}, body)
    assert key is not None and key.startswith("msg:")
    assert key == session_key({}, {"messages": [{"role": "user", "content": "Fix the bug"}]})


def test_hash_differs_by_first_message_and_ignores_later_turns() -> None:
    a = session_key({}, {"messages": [{"role": "user", "content": "one"}]})
    b = session_key({}, {"messages": [{"role": "user", "content": "two"}]})
    a2 = session_key(
        {},
        {"messages": [{"role": "user", "content": "one"}, {"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]},
    )
    assert a != b and a == a2


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": []},
        {"messages": [{"role": "assistant", "content": "hi"}]},
        {"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
        {"messages": "garbage", "contents": 5, "input": None},
        {"metadata": {"user_id": "user_abc_account_x"}},  # no session in it
        {"input": "   "},
    ],
)
def test_session_key_none_when_nothing_to_key_on(body) -> None:
    assert session_key({}, body) is None


def test_session_key_tolerates_non_mapping_body() -> None:
    assert session_key({}, []) is None  # type: ignore[arg-type]
    assert session_key({"session_id": "x"}, None) == "session:x"  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_pin_get_and_ttl() -> None:
    clock = Clock()
    aff = Affinity(ttl_seconds=60, clock=clock)
    assert aff.get("k") is None
    aff.pin("k", "cred-a")
    clock.t = 59.9
    assert aff.get("k") == "cred-a"
    clock.t = 60
    assert aff.get("k") is None
    assert len(aff) == 0


def test_repin_extends_ttl_and_moves_to_new_credential() -> None:
    clock = Clock()
    aff = Affinity(ttl_seconds=60, clock=clock)
    aff.pin("k", "a")
    clock.t = 50
    aff.pin("k", "b")
    clock.t = 100
    assert aff.get("k") == "b"


def test_bounded_evicts_oldest_pin() -> None:
    aff = Affinity(ttl_seconds=60, clock=Clock(), max_entries=2)
    aff.pin("k1", "a")
    aff.pin("k2", "a")
    aff.pin("k1", "a")  # refreshed: k2 is now the oldest
    aff.pin("k3", "b")
    assert len(aff) == 2
    assert aff.get("k2") is None
    assert aff.get("k1") == "a" and aff.get("k3") == "b"


def test_forget_drops_every_session_of_a_credential() -> None:
    aff = Affinity(ttl_seconds=60, clock=Clock())
    aff.pin("k1", "a")
    aff.pin("k2", "a")
    aff.pin("k3", "b")
    assert aff.forget("a") == 2
    assert aff.get("k1") is None and aff.get("k2") is None
    assert aff.get("k3") == "b"
    assert aff.forget("a") == 0


def test_invalid_size() -> None:
    with pytest.raises(ValueError):
        Affinity(ttl_seconds=1, max_entries=0)


def test_only_client_named_sessions_when_messages_are_not_trusted() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert session_key({}, body, by_message=False) is None
    assert session_key({"x-claude-code-session-id": "s1"}, body, by_message=False) == "session:s1"
    meta = {**body, "metadata": {"user_id": "user_ab_account_cd_session_0f-1"}}
    assert session_key({}, meta, by_message=False) == "session:0f-1"
