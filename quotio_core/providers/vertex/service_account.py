"""A Vertex auth file's service-account key, and what its credential carries instead of a secret."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["SERVICE_ACCOUNT_STANDIN", "service_account_of"]

# What a service account's credential carries in place of a secret: the key
# signs a short-lived token per request (login.py), it is never sent.
SERVICE_ACCOUNT_STANDIN = "service-account:"


def service_account_of(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The service-account key JSON inside a vertex auth file ({} when absent)."""
    sa = data.get("service_account") or data.get("serviceAccountJson") or {}
    if isinstance(sa, str):
        # quotio's TS store keeps the whole service-account JSON as a string.
        try:
            sa = json.loads(sa)
        except ValueError:
            return {}
    return sa if isinstance(sa, Mapping) else {}
