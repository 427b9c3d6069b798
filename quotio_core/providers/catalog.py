"""Model ids listed for credentials that do not name their models.

Only used by the model listing routes: routing itself accepts any name of
the provider's family, so a model released after this list still works.
"""

from __future__ import annotations

__all__ = ["CATALOG"]

CATALOG: dict[str, tuple[str, ...]] = {
    "claude": (
        "claude-opus-4-1-20250805",
        "claude-opus-4-20250514",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-20250514",
        "claude-haiku-4-5-20251001",
        "claude-3-7-sonnet-20250219",
        "claude-3-5-haiku-20241022",
    ),
    "codex": ("gpt-5", "gpt-5-codex", "gpt-5-mini", "gpt-4.1", "gpt-4o", "o3", "o4-mini"),
    "gemini": ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"),
    "qwen": ("qwen3-coder-plus", "qwen3-coder-flash"),
    # Copilot spells Claude's models with dots and no date ("claude-sonnet-4.5").
    "github-copilot": (
        "gpt-4.1",
        "gpt-4o",
        "gpt-5",
        "gpt-5-mini",
        "claude-sonnet-4",
        "claude-sonnet-4.5",
        "claude-haiku-4.5",
        "claude-opus-4.1",
        "gemini-2.5-pro",
        "grok-code-fast-1",
    ),
    "iflow": (
        "qwen3-coder-plus",
        "qwen3-max",
        "qwen3-vl-plus",
        "qwen3-235b-a22b-instruct",
        "kimi-k2",
        "kimi-k2-0905",
        "glm-4.6",
        "deepseek-v3.2",
        "deepseek-v3.1",
        "deepseek-r1",
    ),
    # Claude under Anthropic's names: the executor turns "-20250929" into
    # Vertex's "@20250929". Express-mode keys list only the Gemini ones.
    "vertex": (
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "claude-opus-4-1-20250805",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-20250514",
        "claude-haiku-4-5-20251001",
    ),
    # Kiro's own spellings; Kiro accounts also take Claude's names when no Claude
    # account is in the pool (routing.GUEST_FAMILIES), e.g. claude-sonnet-4-20250514.
    "kiro": ("claude-sonnet-4.5", "claude-haiku-4.5", "claude-opus-4.5"),
}
