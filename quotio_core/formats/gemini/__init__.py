"""Gemini generateContent (`/v1beta/models/{m}:…`): google-genai, Gemini CLI; Code Assist's wrapper too.

request.py   bodies <-> ir.Request (and `validate`, the Code Assist wrapper)
schema.py    JSON Schema <-> Gemini's OpenAPI subset for tool parameters
response.py  answers and error bodies <-> ir.Response / ir.ErrorInfo
stream.py    SSE (`alt=sse`) chunks <-> ir stream events
errors.py    the gateway's own errors in Google's shape
usage.py     `usageMetadata`, and what a stream reports of it
"""

import re

from . import errors, request, response, schema, stream, usage

ID = "gemini"
CLIENT = True

# The model and the action are in the path: /v1beta/models/{model}:{action}.
# Takes images as bytes only: the gateway fetches remote ones first.
IMAGES_INLINE = True
ROUTES = {
    ("POST", re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<endpoint>generateContent|streamGenerateContent|countTokens)$")): "",
}
ENDPOINTS = {"generate": "generateContent", "generate-stream": "streamGenerateContent", "count": "countTokens"}

__all__ = ["CLIENT", "ENDPOINTS", "ID", "IMAGES_INLINE", "ROUTES", "errors", "request", "response", "schema", "stream", "usage"]
