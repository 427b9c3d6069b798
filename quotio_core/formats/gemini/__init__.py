"""Gemini generateContent (`/v1beta/models/{m}:…`): google-genai, Gemini CLI; Code Assist's wrapper too.

request.py   bodies <-> ir.Request (and `validate`, the Code Assist wrapper)
schema.py    JSON Schema <-> Gemini's OpenAPI subset for tool parameters
response.py  answers and error bodies <-> ir.Response / ir.ErrorInfo
stream.py    SSE (`alt=sse`) chunks <-> ir stream events
errors.py    the gateway's own errors in Google's shape
usage.py     `usageMetadata`, and what a stream reports of it
"""

from . import errors, request, response, schema, stream, usage

ID = "gemini"
CLIENT = True

__all__ = ["CLIENT", "ID", "errors", "request", "response", "schema", "stream", "usage"]
