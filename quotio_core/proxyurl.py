"""`proxy-url` values as CLIProxyAPI spells them, for gateway traffic.

mitmproxy can chain a flow through an HTTP(S) proxy (CONNECT); SOCKS
proxies it cannot, so a credential configured with one is refused per
request with a clear error rather than silently sent direct.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["DIRECT", "ProxyURL", "parse_proxy_url", "resolve_proxy"]

DIRECT = ("", "direct", "none")


@dataclass(frozen=True)
class ProxyURL:
    scheme: str  # http, https, socks5, socks5h
    host: str
    port: int

    @property
    def supported(self) -> bool:
        return self.scheme in ("http", "https")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_proxy_url(value: str) -> ProxyURL | None:
    """None for direct; raises ValueError for what is not a proxy URL."""
    if value.strip().lower() in DIRECT:
        return None
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "socks5", "socks5h"):
        raise ValueError(f"expected http://, https:// or socks5:// proxy URL, got {value!r}")
    if parts.username or parts.password:
        raise ValueError("proxy URLs with user:password are not supported for gateway traffic")
    if not parts.hostname:
        raise ValueError(f"proxy URL {value!r} names no host")
    default_port = {"http": 80, "https": 443}.get(scheme, 1080)
    return ProxyURL(scheme, parts.hostname, parts.port or default_port)


def resolve_proxy(own: str, global_value: str) -> ProxyURL | None:
    """A credential's own proxy-url wins, `direct`/`none` included; else the global one."""
    return parse_proxy_url(own if own else global_value)
