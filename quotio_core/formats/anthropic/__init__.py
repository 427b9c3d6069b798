"""Anthropic Messages (`POST /v1/messages`): Claude Code, the Anthropic SDKs, Claude upstreams.

request.py   bodies <-> ir.Request (and `validate`, `strip_thinking`)
response.py  answers and error bodies <-> ir.Response / ir.ErrorInfo
stream.py    SSE events <-> ir stream events
errors.py    the gateway's own errors in Anthropic's shape
usage.py     `usage` objects, and what a stream reports of them
"""

from . import errors, request, response, stream, usage

ID = "anthropic"
CLIENT = True  # clients speak it (it has encoders for answers and errors)

__all__ = ["CLIENT", "ID", "errors", "request", "response", "stream", "usage"]
