"""Fetches remote images for targets that only take inline bytes (Gemini, Kiro).

The gateway fetches these on a client's behalf, from its own network position,
so a URL must not reach what the client itself cannot (server-side request
forgery). Under `images.fetch-remote: public` (the default) a host name is
resolved once, every address it resolves to is checked, and the connection
goes to a checked address; loopback, private, link-local, multicast, reserved
and unspecified addresses are refused unless `images.allowed-networks` names
them. Redirects are followed by hand (at most 3, each hop checked the same
way), one deadline covers all of a request's images, and a request names at
most 20 of them, each at most 20 MiB.

Any failure answers 400 with the same words, whatever the cause: a refused
address, a closed port or a 404 must look alike to the client, or the gateway
becomes a scanner of its own network. The cause is logged at debug level.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import socket
from collections.abc import Iterable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlsplit

import httpcore
import httpx

from .config import ImageFetching
from .errors import BadRequest

__all__ = [
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_REDIRECTS",
    "ImageClients",
    "Refused",
    "fetch_images",
    "image_client",
    "is_public",
    "permitted",
]

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGES = 20
MAX_REDIRECTS = 3
# Per step; the policy's deadline bounds the whole.
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# IPv6 addresses that carry an IPv4 one: the IPv4 address is what is reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The host's address is one the policy does not let the gateway connect to."""


class _Failed(Exception):
    """One image could not be fetched; the text is for the debug log only."""


# --- which addresses may be connected to ---------------------------------------------


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 IPv6 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_public(ip: IPAddress) -> bool:
    """Whether `ip` is an ordinary address on the internet, not one inside some network."""
    ip = _unwrap(ip)
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:  # deprecated fec0::/10
        return False
    return ip.is_global and not (
        ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified
    )


def permitted(ip: IPAddress, policy: ImageFetching) -> bool:
    """Whether the policy lets the gateway connect to `ip` for an image."""
    if policy.fetch_remote == "any":
        return True
    if policy.fetch_remote != "public":
        return False
    return is_public(ip) or any(ip in net or _unwrap(ip) in net for net in policy.allowed_networks)


# --- a client that connects only to permitted addresses ------------------------------


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy permits.

    Every connection (first hop and each redirect) comes through here. The name
    is resolved once and the socket goes to one of the checked addresses, so a
    second lookup that answers differently (DNS rebinding) is never made. TLS
    still verifies the certificate against, and sends SNI for, the host name:
    httpcore passes it to start_tls itself.
    """

    def __init__(self, policy: ImageFetching):
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:  # socket.gaierror: no such name
            raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from e
        ips = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        # One refused address refuses the name: which one the OS would pick is not ours to know.
        for ip in ips:
            if not permitted(ip, self._policy):
                raise Refused(f"{host} resolves to {ip}, which images.fetch-remote does not allow")
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for ip in ips:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as e:
                error = e
        raise error

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over the guarded backend: no proxy, nothing from the environment."""

    def __init__(self, policy: ImageFetching):
        ssl_context = httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False)
        # httpx 0.29 takes no network backend; its pool is replaced by one that has ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=_GuardedBackend(policy)
        )


def image_client(policy: ImageFetching) -> httpx.AsyncClient:
    """A client for `fetch_images` that connects only where `policy` permits."""
    return httpx.AsyncClient(
        transport=_GuardedTransport(policy),
        timeout=TIMEOUT,
        trust_env=False,
        follow_redirects=False,  # `_fetch` follows them itself, counted
        # One client serves every client of the gateway: no cookie passes between them.
        cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
    )


class ImageClients:
    """One guarded client per policy (a config reload may bring another), built once."""

    def __init__(self) -> None:
        self._clients: dict[ImageFetching, httpx.AsyncClient] = {}

    def get(self, policy: ImageFetching) -> httpx.AsyncClient:
        if policy not in self._clients:
            self._clients[policy] = image_client(policy)
        return self._clients[policy]

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


# --- fetching ------------------------------------------------------------------------


def _loggable(url: str) -> str:
    """The URL without query, fragment or user info: those may hold a token."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _failed_message(index: int) -> str:
    # The same words for every cause: see the module docstring.
    return f"image {index} could not be fetched; send it inline (base64)"


async def _fetch(client: httpx.AsyncClient, url: str, limit: int) -> tuple[str, str]:
    try:
        target = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            async with client.stream("GET", target, headers={"accept": "image/*"}) as resp:
                if resp.status_code in _REDIRECT_STATUSES and "location" in resp.headers:
                    target = resp.url.join(resp.headers["location"])
                    if target.scheme not in ("http", "https"):
                        raise _Failed(f"redirected to a {target.scheme!r} URL")
                    continue
                if resp.status_code != 200:
                    raise _Failed(f"HTTP {resp.status_code}")
                media_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                if not media_type.startswith("image/"):
                    raise _Failed(f"content-type {media_type or 'none'} is not an image")
                if int(resp.headers.get("content-length") or 0) > limit:
                    raise _Failed(f"larger than {limit} bytes")
                data = bytearray()
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > limit:
                        raise _Failed(f"larger than {limit} bytes")
                return media_type, base64.b64encode(bytes(data)).decode()
        raise _Failed(f"more than {MAX_REDIRECTS} redirects")
    except Refused as e:
        raise _Failed(str(e)) from e
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as e:
        # Transport errors' texts are the OS's words and name no query string.
        raise _Failed(f"{type(e).__name__}: {e}") from e


async def fetch_images(
    client: httpx.AsyncClient,
    urls: Iterable[str],
    policy: ImageFetching,
    limit: int = MAX_IMAGE_BYTES,
) -> dict[str, tuple[str, str]]:
    """url -> (media type, base64 data), fetched with `client` (from `image_client(policy)`).

    Raises BadRequest naming the first image (counted from 1 in `urls`) that
    could not be fetched, in the same words whatever the reason.
    """
    urls = list(urls)
    if not urls:
        return {}
    if policy.fetch_remote == "off":
        raise BadRequest("remote images are turned off on this gateway; send images inline (base64)")
    if len(urls) > MAX_IMAGES:
        raise BadRequest(
            f"a request may name at most {MAX_IMAGES} remote images, this one names {len(urls)};"
            " send the others inline (base64)"
        )
    for i, url in enumerate(urls, 1):
        if url.partition(":")[0].lower() not in ("http", "https"):
            raise BadRequest(f"image {i} is not an http(s) URL; send it inline (base64)")

    tasks = [asyncio.create_task(_fetch(client, url, limit)) for url in urls]
    try:
        done, _ = await asyncio.wait(
            tasks, timeout=policy.deadline_seconds, return_when=asyncio.FIRST_EXCEPTION
        )
    finally:
        # Past the deadline, after a failure, or when the client has gone: stop the rest.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    failures = [(i, t.exception()) for i, t in enumerate(tasks, 1) if t in done and t.exception()]
    for i, error in failures:
        if not isinstance(error, _Failed):
            raise error  # a bug, not the image's fault
    if failures:
        index, reason = failures[0][0], str(failures[0][1])
    elif len(done) < len(tasks):
        index = next(i for i, t in enumerate(tasks, 1) if t not in done)
        reason = f"not fetched within the {policy.deadline_seconds:g}s deadline"
    else:
        return {url: task.result() for url, task in zip(urls, tasks, strict=True)}
    log.debug("image %d (%s) could not be fetched: %s", index, _loggable(urls[index - 1]), reason)
    raise BadRequest(_failed_message(index))
