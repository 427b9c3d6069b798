"""Fetches remote images for targets that only take inline bytes (Gemini).

Async, size-limited and time-limited: a slow or huge image costs the one
request that named it, with a clear 400, and nothing else.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable

import httpx

from .errors import BadRequest

__all__ = ["MAX_IMAGE_BYTES", "fetch_images"]

MAX_IMAGE_BYTES = 20 * 1024 * 1024
TIMEOUT = httpx.Timeout(15.0, connect=5.0)


async def _fetch(client: httpx.AsyncClient, url: str, limit: int) -> tuple[str, str]:
    if not url.startswith(("http://", "https://")):
        raise BadRequest(f"image URL {url[:200]!r} is not http(s); send the image inline (base64)")
    try:
        async with client.stream("GET", url, timeout=TIMEOUT, follow_redirects=True) as resp:
            if resp.status_code != 200:
                raise BadRequest(f"could not fetch image {url[:200]}: HTTP {resp.status_code}")
            media_type = resp.headers.get("content-type", "").split(";")[0].strip()
            if not media_type.startswith("image/"):
                raise BadRequest(f"{url[:200]} is not an image (content-type {media_type or 'none'})")
            data = bytearray()
            async for chunk in resp.aiter_bytes():
                data += chunk
                if len(data) > limit:
                    raise BadRequest(f"image {url[:200]} is larger than {limit // (1024 * 1024)} MiB")
    except httpx.HTTPError as e:
        raise BadRequest(f"could not fetch image {url[:200]}: {e}") from e
    return media_type, base64.b64encode(bytes(data)).decode()


async def fetch_images(
    client: httpx.AsyncClient, urls: Iterable[str], limit: int = MAX_IMAGE_BYTES
) -> dict[str, tuple[str, str]]:
    """url -> (media type, base64 data); raises BadRequest naming the first failure."""
    urls = list(urls)
    results = await asyncio.gather(*(_fetch(client, u, limit) for u in urls))
    return dict(zip(urls, results, strict=True))
