"""The Responses API answers errors as OpenAI does."""

from ..openai.errors import render

__all__ = ["render"]
