"""How Gemini API keys are called: the public generateContent API, key in a header.

The key travels as `x-goog-api-key` rather than `?key=` so it never lands in
URLs, logs or saved flows.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from ..base import CLIENT_SECRET_PARAMS, Call, UpstreamRequest, extra_headers

FORMAT = "gemini"


def prepare(call: Call) -> UpstreamRequest:
    cred = call.credential
    base = cred.base_url or call.upstreams["gemini"]["api-key-base-url"]
    headers = {**call.header_defaults, **extra_headers(cred, call.client_headers)}
    headers["x-goog-api-key"] = cred.secret
    query = {k: v for k, v in call.query.items() if k not in CLIENT_SECRET_PARAMS}
    url = f"{base}/v1beta/models/{quote(call.model, safe='.-_')}:{call.endpoint}"
    if query:
        url += "?" + urlencode(query)
    return UpstreamRequest(url=url, headers=headers, secret_headers=("x-goog-api-key",))
