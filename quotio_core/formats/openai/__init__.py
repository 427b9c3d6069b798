"""OpenAI Chat Completions (`POST /v1/chat/completions`): the OpenAI SDKs, editors, compatible upstreams.

request.py   bodies <-> ir.Request (and `validate`)
response.py  answers and error bodies <-> ir.Response / ir.ErrorInfo
stream.py    `chat.completion.chunk` events <-> ir stream events
errors.py    the gateway's own errors in OpenAI's shape
usage.py     `usage` objects, and what a stream reports of them
"""

from . import errors, request, response, stream, usage

ID = "openai"
CLIENT = True

IMAGES_INLINE = False  # takes image URLs itself
ROUTES = {("POST", "/v1/chat/completions"): "chat"}
ENDPOINTS = {"generate": "chat"}  # no counting endpoint: the gateway estimates

__all__ = ["CLIENT", "ENDPOINTS", "ID", "IMAGES_INLINE", "ROUTES", "errors", "request", "response", "stream", "usage"]
