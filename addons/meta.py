"""Keys under which the addons pass state to each other in `flow.metadata`."""

from __future__ import annotations

import json
from typing import Any

from mitmproxy import http

ROUTE = "quotio.route"  # quotio_core.routes.ApiRoute
CLIENT_PATH = "quotio.client_path"  # the path the client asked for, before routing
CLIENT_KEY_ID = "quotio.client_key_id"
PLAN = "quotio.plan"  # quotio_core.gateway.Plan
SECRET_HEADERS = "quotio.secret_headers"  # header names to mask once sent
STREAM_TAP = "quotio.stream_tap"  # addons.streams.StreamTap
ERROR = "quotio.error"  # why the gateway answered this itself
PROVIDER = "quotio.provider"
CREDENTIAL = "quotio.credential"
MODEL = "quotio.model"

MASK = "***"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> http.Response:
    return http.Response.make(
        status,
        json.dumps(body).encode() if not isinstance(body, bytes) else body,
        {"content-type": "application/json", **(headers or {})},
    )


def is_fresh(flow: http.HTTPFlow) -> bool:
    """Whether an earlier addon has not already answered or failed this flow."""
    return flow.response is None and flow.error is None and flow.live
