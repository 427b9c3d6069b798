"""Who may use the gateway: configured client keys, else loopback only; and no web page.

Trusting loopback alone is not enough on a machine with a browser: a page
the user visits can send "simple" requests (form posts, `text/plain` fetches)
to 127.0.0.1 without any preflight, and DNS rebinding can point a page's own
name at 127.0.0.1 to read the answers. `browser_refusal` turns those away
wherever the gateway trusts a caller for being local: a Host that is not this
gateway, a foreign Origin or `Sec-Fetch-Site`, and writes whose body is not
JSON.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from .pool.credentials import key_id

__all__ = ["Decision", "authorize", "browser_refusal", "host_name", "is_local_name", "is_loopback", "presented_key"]

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FETCH_SITE_OK = frozenset({"same-origin", "none"})
JSON = "application/json"


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def host_name(host_header: str) -> str:
    """The host of a Host header, without port or brackets, lower-case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def is_local_name(host: str) -> bool:
    """A name or address that can only mean this machine."""
    return host == "localhost" or host.endswith(".localhost") or is_loopback(host)


def browser_refusal(
    method: str,
    headers: Mapping[str, str],
    allowed_hosts: Collection[str],
    *,
    has_body: bool,
    body_types: Collection[str] = (JSON,),
    navigation: bool = False,
) -> str | None:
    """Why a request trusted for being local looks like a web page's doing, or None.

    ``headers`` have lower-case names and the client's own Host. A top-level
    navigation (``navigation``: a page with no data, like the dashboard) may
    come from anywhere; everything else must be same-origin.
    """
    host = host_name(headers.get("host", ""))
    if not host or not (is_local_name(host) or host in allowed_hosts):
        return (
            f"refused: this gateway is not {host or 'an unnamed host'!r} (a web page's DNS rebinding?); "
            "reach it as localhost or 127.0.0.1, or add the name to allowed-hosts"
        )
    if navigation and method in ("GET", "HEAD"):
        return None
    origin = headers.get("origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != headers.get("host", "").lower()):
        return f"refused: a cross-site request from {origin[:100]!r}"
    site = headers.get("sec-fetch-site")
    if site is not None and site not in _FETCH_SITE_OK:
        return f"refused: a browser request from another site (Sec-Fetch-Site: {site[:40]})"
    if has_body and method in _WRITES:
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype not in body_types:
            return f"refused: send the body as {' or '.join(sorted(body_types))}, not {ctype or 'no content type'!r}"
    return None


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


def authorize(keys: Sequence[str], presented: str | None, client_ip: str, salt: bytes = b"") -> Decision:
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
    return Decision(True, key_id=key_id(presented, salt))
