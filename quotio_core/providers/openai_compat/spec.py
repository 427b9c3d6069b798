"""OpenAI-compatible upstreams: openai-compatibility entries (Chat Completions with a bearer key)."""

from __future__ import annotations

from ..base import Provider
from . import call

PROVIDER = Provider(
    id="openai-compatibility",
    calls={"api-key": call},
    # Entries live in config.yaml only; CLIProxyAPI has no auth file for them.
    auth_files=False,
)
