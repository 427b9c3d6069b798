"""Who may use the gateway: configured client keys, else loopback only."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .credentials import key_id

__all__ = ["Decision", "authorize", "is_loopback", "presented_key"]


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The key a client sent, in any of the places the SDKs put it."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    for name in ("x-api-key", "x-goog-api-key"):
        if headers.get(name):
            return headers[name]
    for name in ("key", "auth_token"):
        if query.get(name):
            return query[name]
    return None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200
    message: str = ""
    key_id: str | None = None


def _matches(presented: str, keys: Sequence[str]) -> bool:
    # Compare against every key so the timing does not reveal which one matched.
    found = False
    for key in keys:
        found |= hmac.compare_digest(presented.encode(), key.encode())
    return found


def authorize(keys: Sequence[str], presented: str | None, client_ip: str) -> Decision:
    if not keys:
        if is_loopback(client_ip):
            return Decision(True)
        return Decision(
            False,
            403,
            "this gateway serves only loopback clients until client keys are configured: "
            "set api-keys in config.yaml and send one as Authorization: Bearer <key>",
        )
    if presented is None:
        return Decision(False, 401, "missing API key: send one of the configured api-keys")
    if not _matches(presented, keys):
        return Decision(False, 401, "invalid API key")
    return Decision(True, key_id=key_id(presented))
