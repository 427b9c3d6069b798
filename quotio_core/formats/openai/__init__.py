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

__all__ = ["CLIENT", "ID", "errors", "request", "response", "stream", "usage"]
