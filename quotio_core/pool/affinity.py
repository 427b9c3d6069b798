"""Session affinity: keep one conversation on one credential.

Why: provider prompt caches are per account, and Anthropic thinking-block
signatures only validate on the account that produced them (CPA issue family
"Invalid `signature` in `thinking` block"). So a session that started on a
credential should stay there while it is usable.

`session_key` derives a stable key from what clients send; `Affinity` maps
keys to credential ids with a TTL and a size bound. Single-threaded by
design: used from the gateway's event loop only.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Affinity", "ForeignThinking", "session_key"]

# Claude Code first, then Codex's spellings; all are per-conversation ids.
_SESSION_HEADERS = ("x-claude-code-session-id", "session_id", "conversation_id", "session-id")
# Claude Code's metadata.user_id looks like "user_<hash>_account_<uuid>_session_<uuid>".
_USER_ID_SESSION = re.compile(r"session_([0-9A-Za-z-]+)")
# Hash keys from huge first messages stay cheap and bounded.
_MAX_HASHED_CHARS = 64_000


def session_key(headers: Mapping[str, str], body: Mapping[str, Any], by_message: bool = True) -> str | None:
    """A key naming the client's conversation, or None when nothing identifies it.

    ``headers`` must have lower-case names. Keys are prefixed with their source
    so that, e.g., a header id never collides with a message hash.
    ``by_message=False`` trusts only ids the client sent: unrelated requests
    with the same first message (a "hi" from a load tool) must not stick together.
    """
    for name in _SESSION_HEADERS:
        value = headers.get(name)
        if isinstance(value, str) and value.strip():
            return f"session:{value.strip()}"
    if not isinstance(body, Mapping):
        return None
    cache_key = body.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key.strip():
        return f"cache:{cache_key.strip()}"
    from_user = _user_id_session(body.get("metadata"))
    if from_user:
        return f"session:{from_user}"
    if not by_message:
        return None
    text = _first_user_text(body)
    if text:
        digest = hashlib.sha256(text[:_MAX_HASHED_CHARS].encode("utf-8", "replace")).hexdigest()
        return f"msg:{digest[:32]}"
    return None


def _user_id_session(metadata: Any) -> str | None:
    if not isinstance(metadata, Mapping):
        return None
    user_id = metadata.get("user_id")
    if not isinstance(user_id, str):
        return None
    # Newer Claude Code versions send a JSON object as the user_id string.
    if user_id.lstrip().startswith("{"):
        try:
            parsed = json.loads(user_id)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            sid = parsed.get("session_id")
            return sid.strip() if isinstance(sid, str) and sid.strip() else None
    match = _USER_ID_SESSION.search(user_id)
    return match.group(1) if match else None


def _first_user_text(body: Mapping[str, Any]) -> str | None:
    """Text of the first user turn in any of the four request shapes."""
    for field in ("messages", "contents"):  # Anthropic/OpenAI, then Gemini
        turns = body.get(field)
        if isinstance(turns, list):
            text = _first_user_turn(turns)
            if text:
                return text
    items = body.get("input")  # OpenAI Responses / Codex
    if isinstance(items, str):
        return items.strip() or None
    if isinstance(items, list):
        return _first_user_turn(items)
    return None


def _first_user_turn(turns: list[Any]) -> str | None:
    for turn in turns:
        if not isinstance(turn, Mapping) or turn.get("role") != "user":
            continue
        text = _text_of(turn.get("content")) or _text_of(turn.get("parts"))
        if text:
            return text
    return None


def _text_of(content: Any) -> str | None:
    """Joined text of a string content or a list of text/input_text blocks/parts."""
    if isinstance(content, str):
        return content.strip() or None
    if not isinstance(content, list):
        return None
    pieces = [
        block["text"]
        for block in content
        if isinstance(block, Mapping) and isinstance(block.get("text"), str)
    ]
    joined = "\n".join(pieces).strip()
    return joined or None


class Affinity:
    """Session key → credential id, expiring ``ttl_seconds`` after the last pin."""

    def __init__(
        self,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        # Ordered oldest pin first, so eviction pops from the front.
        self._pins: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, key: str) -> str | None:
        """The pinned credential, or None if unpinned or expired.

        Reading does not extend the TTL: the caller pins again after a
        successful request, which is what keeps a live session pinned.
        """
        entry = self._pins.get(key)
        if entry is None:
            return None
        cred_id, expires = entry
        if self._clock() >= expires:
            del self._pins[key]
            return None
        return cred_id

    def pin(self, key: str, cred_id: str) -> None:
        self._pins[key] = (cred_id, self._clock() + self.ttl_seconds)
        self._pins.move_to_end(key)
        while len(self._pins) > self.max_entries:
            self._pins.popitem(last=False)

    def forget(self, cred_id: str) -> int:
        """Unpin every session on a credential (it was removed or disabled)."""
        keys = [k for k, (c, _) in self._pins.items() if c == cred_id]
        for key in keys:
            del self._pins[key]
        return len(keys)

    def __len__(self) -> int:
        return len(self._pins)


class ForeignThinking:
    """Which sessions carry thinking another account signed, per account.

    Once an account refused a session's thinking signatures (a 400), the
    first `turns` assistant turns of that session are known to be foreign
    there: they are dropped before every later request to that account,
    instead of costing each turn a refusal. Turns the account wrote itself
    come later and are kept. Bounded; single-threaded like `Affinity`.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._turns: OrderedDict[tuple[str, str], int] = OrderedDict()

    def note(self, key: str, cred_id: str, turns: int) -> None:
        self._turns[(key, cred_id)] = turns
        self._turns.move_to_end((key, cred_id))
        while len(self._turns) > self._max:
            self._turns.popitem(last=False)

    def turns(self, key: str, cred_id: str) -> int | None:
        return self._turns.get((key, cred_id))
