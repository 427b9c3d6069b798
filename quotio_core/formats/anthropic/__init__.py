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

# The gateway's routes for clients of this format: (method, path) -> endpoint.
IMAGES_INLINE = False  # takes image URLs itself
ROUTES = {("POST", "/v1/messages"): "messages", ("POST", "/v1/messages/count_tokens"): "count_tokens"}
# The upstream endpoint for each kind of call to a provider speaking it.
ENDPOINTS = {"generate": "messages", "count": "count_tokens"}

__all__ = ["CLIENT", "ENDPOINTS", "ID", "IMAGES_INLINE", "ROUTES", "errors", "request", "response", "stream", "usage"]
