"""OpenAI Responses (`POST /v1/responses`): Codex CLI, the OpenAI SDKs; the Codex backend upstream.

request.py   bodies <-> ir.Request (and `validate`)
response.py  answers and error bodies <-> ir.Response / ir.ErrorInfo
stream.py    `response.*` events <-> ir stream events
errors.py    the gateway's own errors (OpenAI's shape)
usage.py     `response.usage`, and what a stream reports of it
"""

from . import errors, request, response, stream, usage

ID = "responses"
CLIENT = True

IMAGES_INLINE = False  # takes image URLs itself
ROUTES = {
    ("POST", "/v1/responses"): "responses",
    # Codex CLI's chatgpt_base_url form, as CLIProxyAPI accepts it.
    ("POST", "/backend-api/codex/responses"): "responses",
}
ENDPOINTS = {"generate": "responses"}

__all__ = ["CLIENT", "ENDPOINTS", "ID", "IMAGES_INLINE", "ROUTES", "errors", "request", "response", "stream", "usage"]
