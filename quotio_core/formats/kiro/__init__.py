"""Kiro (CodeWhisperer `generateAssistantResponse`): an upstream format only.

request.py   ir.Request -> `conversationState`
response.py  error bodies and the event stream's exceptions -> ir.ErrorInfo
stream.py    the AWS binary event stream (raw bytes, eventstream.py) -> ir stream events

No client speaks it, so it has no encoders for answers, errors or usage.
"""

from . import request, response, stream

ID = "kiro"
CLIENT = False

# Takes images as bytes only: the gateway fetches remote ones first.
IMAGES_INLINE = True
ROUTES: dict = {}  # no client speaks it
ENDPOINTS = {"generate": "generateAssistantResponse"}

__all__ = ["CLIENT", "ENDPOINTS", "ID", "IMAGES_INLINE", "ROUTES", "request", "response", "stream"]
