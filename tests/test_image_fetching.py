"""Remote image fetching through the real mitmdump: no request forgery into the gateway's network.

A Gemini target takes only inline bytes, so the gateway fetches an image URL
itself. These tests serve images from 127.0.0.1 (always refused unless
`fetch-remote: any`) and 127.0.0.2 (allowed through `allowed-networks`; Linux
routes all of 127/8 to lo) and check what the gateway fetches, what reaches
the fake Gemini upstream, and that every refusal reads the same.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anthropic
import openai
import pytest

from tests.fakes.upstreams import FakeUpstream
from tests.gateway_proc import GatewayProcess, free_port, start_gateway

KEY = "image-e2e-client-key-0123456789"
MODEL = "gemini-2.5-flash"
DEADLINE = 2.0
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
GENERIC = "image 1 could not be fetched; send it inline (base64)"


class ImageServer:
    """A tiny image host. Paths:

    /cat.png          the image
    /hop/N.png        302 to /hop/(N-1).png; /hop/0.png is the image
    /to?location=URL  302 to URL
    /slow.png         the image's head, then one byte every 0.1 s
    /missing.png      404
    """

    def __init__(self, host: str):
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                path = urlsplit(self.path).path
                if path == "/to":
                    return self._redirect(parse_qs(urlsplit(self.path).query)["location"][0])
                if path.startswith("/hop/"):
                    n = int(path.removeprefix("/hop/").removesuffix(".png"))
                    if n > 0:
                        return self._redirect(f"/hop/{n - 1}.png")
                    return self._image(PNG)
                if path == "/cat.png":
                    return self._image(PNG)
                if path == "/slow.png":
                    return self._trickle()
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()

            def _image(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("content-type", "image/png")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("location", location)
                self.send_header("content-length", "0")
                self.end_headers()

            def _trickle(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "image/png")
                self.send_header("content-length", "100000")
                self.end_headers()
                try:
                    for _ in range(600):  # a minute at most, ended early when the gateway leaves
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://{host}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def loopback() -> Iterator[ImageServer]:
    server = ImageServer("127.0.0.1")
    yield server
    server.close()


@pytest.fixture(scope="module")
def internal() -> Iterator[ImageServer]:
    """Stands for an internal image host the operator allowed (127.0.0.2/32)."""
    server = ImageServer("127.0.0.2")
    yield server
    server.close()


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeUpstream]:
    with FakeUpstream("Hello from Gemini fake") as fake:
        yield fake


@pytest.fixture(autouse=True)
def _reset(request, gemini):
    gemini.clear()
    for name in ("loopback", "internal"):
        if name in request.fixturenames:
            request.getfixturevalue(name).hits.clear()


def _start(root: Path, confdir, gemini: FakeUpstream, images: dict) -> GatewayProcess:
    config = {
        "api-keys": [KEY],
        "gemini-api-key": [{"api-key": "AIza-images", "models": [{"name": MODEL}]}],
        "upstreams": {"gemini": {"api-key-base-url": gemini.url}},
        "images": images,
    }
    return start_gateway(root, config, confdir=confdir)


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, gemini) -> Iterator[GatewayProcess]:
    images = {"allowed-networks": ["127.0.0.2/32"], "deadline-seconds": DEADLINE}
    gateway = _start(tmp_path_factory.mktemp("images"), confdir, gemini, images)
    yield gateway
    gateway.stop()


def _messages(*urls: str) -> list[dict]:
    parts = [{"type": "text", "text": "what is this"}]
    parts += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return [{"role": "user", "content": parts}]


def ask(gw: GatewayProcess, *urls: str):
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0, timeout=30)
    return client.chat.completions.create(model=MODEL, messages=_messages(*urls))


def refused(gw: GatewayProcess, gemini: FakeUpstream, *urls: str) -> tuple[str, bytes]:
    """The 400's message and raw body; nothing may have reached the upstream."""
    with pytest.raises(openai.BadRequestError) as e:
        ask(gw, *urls)
    assert e.value.status_code == 400
    assert gemini.requests == []
    return e.value.response.json()["error"]["message"], e.value.response.content


def inlined(gemini: FakeUpstream) -> list[bytes]:
    parts = gemini.last.json["contents"][0]["parts"]
    return [base64.b64decode(p["inlineData"]["data"]) for p in parts if "inlineData" in p]


# --- the default policy (public, plus the allowed 127.0.0.2/32) ----------------------------


def test_loopback_image_is_refused_before_any_connection(gw, gemini, loopback):
    message, _ = refused(gw, gemini, loopback.url("/cat.png?token=abc"))
    assert message == GENERIC
    assert loopback.hits == []


def test_localhost_by_name_is_refused(gw, gemini, loopback):
    port = loopback.base.rsplit(":", 1)[1]
    message, _ = refused(gw, gemini, f"http://localhost:{port}/cat.png")
    assert message == GENERIC
    assert loopback.hits == []


def test_the_gateways_own_management_routes_are_refused(gw, gemini):
    message, _ = refused(gw, gemini, f"{gw.url}/v0/management/config")
    assert message == GENERIC
    message, _ = refused(gw, gemini, f"http://localhost:{gw.port}/v0/management/auth-files")
    assert message == GENERIC


def test_allowed_network_image_is_fetched_and_sent_inline(gw, gemini, internal):
    answer = ask(gw, internal.url("/cat.png"))
    assert answer.choices[0].message.content == "Hello from Gemini fake"
    assert inlined(gemini) == [PNG]
    assert internal.hits == ["/cat.png"]


def test_three_redirects_are_followed(gw, gemini, internal):
    ask(gw, internal.url("/hop/3.png"))
    assert inlined(gemini) == [PNG]
    assert internal.hits == ["/hop/3.png", "/hop/2.png", "/hop/1.png", "/hop/0.png"]


def test_four_redirects_are_refused(gw, gemini, internal):
    message, _ = refused(gw, gemini, internal.url("/hop/4.png"))
    assert message == GENERIC
    assert internal.hits == ["/hop/4.png", "/hop/3.png", "/hop/2.png", "/hop/1.png"]


def test_redirect_from_allowed_host_to_loopback_is_refused(gw, gemini, internal, loopback):
    message, _ = refused(gw, gemini, internal.url(f"/to?location={loopback.url('/cat.png')}"))
    assert message == GENERIC
    assert [h.split("?")[0] for h in internal.hits] == ["/to"]
    assert loopback.hits == []


def test_more_than_twenty_images_are_refused_unfetched(gw, gemini, internal):
    urls = [internal.url(f"/cat.png?n={i}") for i in range(21)]
    message, _ = refused(gw, gemini, *urls)
    assert "at most 20 remote images" in message
    assert internal.hits == []


def test_twenty_images_are_fetched(gw, gemini, internal):
    ask(gw, *(internal.url(f"/cat.png?n={i}") for i in range(20)))
    assert inlined(gemini) == [PNG] * 20


def test_a_trickling_image_ends_at_the_deadline(gw, gemini, internal):
    start = time.monotonic()
    message, _ = refused(gw, gemini, internal.url("/slow.png"))
    elapsed = time.monotonic() - start
    assert message == GENERIC
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + 3, elapsed


def test_refusals_are_indistinguishable(gw, gemini, loopback, internal):
    """Blocked address, closed port, missing file: the same body, so no port or route oracle."""
    closed = f"http://127.0.0.2:{free_port()}/cat.png"  # allowed network, nothing listening
    bodies = {
        "blocked address": refused(gw, gemini, loopback.url("/cat.png"))[1],
        "connection refused": refused(gw, gemini, closed)[1],
        "404": refused(gw, gemini, internal.url("/missing.png"))[1],
        "blocked redirect": refused(gw, gemini, internal.url(f"/to?location={loopback.url('/x')}"))[1],
    }
    assert len(set(bodies.values())) == 1, bodies
    assert GENERIC.encode() in bodies["blocked address"]


def test_refusal_speaks_the_clients_api(gw, gemini, loopback):
    client = anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(
            model=MODEL, max_tokens=16,
            messages=[{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": loopback.url("/cat.png")}}]}],
        )
    body = e.value.response.json()
    assert body["type"] == "error"
    assert (body["error"]["type"], body["error"]["message"]) == ("invalid_request_error", GENERIC)
    assert gemini.requests == []
    assert loopback.hits == []


# --- the other modes -------------------------------------------------------------------


def test_fetch_remote_off_refuses_every_remote_image(tmp_path, confdir, gemini, internal):
    gateway = _start(tmp_path, confdir, gemini, {"fetch-remote": "off", "allowed-networks": ["127.0.0.2/32"]})
    try:
        message, _ = refused(gateway, gemini, internal.url("/cat.png"))
    finally:
        gateway.stop()
    assert "remote images are turned off" in message
    assert internal.hits == []


def test_fetch_remote_any_fetches_from_loopback(tmp_path, confdir, gemini, loopback):
    gateway = _start(tmp_path, confdir, gemini, {"fetch-remote": "any"})
    try:
        ask(gateway, loopback.url("/cat.png"))
        assert inlined(gemini) == [PNG]
        assert loopback.hits == ["/cat.png"]
        # Still at most 3 redirects.
        gemini.clear()
        message, _ = refused(gateway, gemini, loopback.url("/hop/4.png"))
        assert message == GENERIC
    finally:
        gateway.stop()
