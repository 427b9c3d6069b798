"""Unit tests of quotio_core.images: the address policy, limits and the one message."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time

import httpcore
import httpx
import pytest

from quotio_core import images
from quotio_core.config import ConfigError, ImageFetching, parse_file_config
from quotio_core.errors import BadRequest
from quotio_core.images import MAX_IMAGES, Refused, fetch_images, is_public, permitted

PUBLIC = ImageFetching()
GENERIC = "image 1 could not be fetched; send it inline (base64)"
PNG = b"\x89PNG\r\n\x1a\nfake"

# --- the address policy ------------------------------------------------------------------

REFUSED = {
    # IPv4
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "100.64.0.1": "shared address space (CGNAT)",
    "169.254.169.254": "link-local (cloud metadata)",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast",
    "0.0.0.0": "unspecified",
    "192.0.2.1": "documentation",
    # IPv6
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "unique local",
    "fd12:3456::1": "unique local",
    "fec0::1": "site-local (deprecated)",
    "ff02::1": "multicast",
    "ff0e::1": "multicast (global scope)",
    "2001:db8::1": "documentation",
    "100::1": "discard-only",
    # IPv6 carrying IPv4
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "::ffff:169.254.169.254": "IPv4-mapped link-local",
    "::ffff:0.0.0.0": "IPv4-mapped unspecified",
    "64:ff9b::7f00:1": "NAT64 of loopback",
    "64:ff9b::a9fe:a9fe": "NAT64 of link-local",
    "::7f00:1": "IPv4-compatible (reserved)",
    "2002:7f00:1::1": "6to4 of loopback",
}
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED, ids=[f"{a} {why}" for a, why in REFUSED.items()])
def test_non_public_addresses_are_refused(address):
    ip = ipaddress.ip_address(address)
    assert not is_public(ip)
    assert not permitted(ip, PUBLIC)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_permitted(address):
    ip = ipaddress.ip_address(address)
    assert is_public(ip)
    assert permitted(ip, PUBLIC)


def test_allowed_networks_open_only_themselves():
    policy = ImageFetching(allowed_networks=["127.0.0.2/32", "fd00:1::/64"])
    ip = ipaddress.ip_address
    assert permitted(ip("127.0.0.2"), policy)
    assert permitted(ip("::ffff:127.0.0.2"), policy)  # the same host, written as IPv6
    assert permitted(ip("fd00:1::5"), policy)
    assert permitted(ip("8.8.8.8"), policy)
    for other in ("127.0.0.1", "::ffff:127.0.0.1", "127.0.0.3", "fd00:2::5", "::1"):
        assert not permitted(ip(other), policy), other


def test_modes():
    loopback = ipaddress.ip_address("127.0.0.1")
    assert permitted(loopback, ImageFetching(fetch_remote="any"))
    assert not permitted(ipaddress.ip_address("8.8.8.8"), ImageFetching(fetch_remote="off"))


# --- the guarded backend ------------------------------------------------------------------


@pytest.fixture
def listener():
    """A listening socket on 127.0.0.2 (Linux routes all of 127/8 to lo)."""
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        s.listen()
        yield s.getsockname()[1]


def _resolve_to(monkeypatch, *addresses: str) -> list[str]:
    """Make every lookup answer `addresses`; returns the list of names looked up."""
    looked_up: list[str] = []

    async def getaddrinfo(self, host, port, **kw):
        looked_up.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)
    return looked_up


async def test_backend_refuses_loopback_by_name_and_literal(listener):
    backend = images._GuardedBackend(PUBLIC)
    for host in ("localhost", "127.0.0.2", "::1"):
        with pytest.raises(Refused):
            await backend.connect_tcp(host, listener)


async def test_backend_refuses_a_name_if_any_of_its_addresses_is_refused(monkeypatch, listener):
    _resolve_to(monkeypatch, "8.8.8.8", "127.0.0.2")
    with pytest.raises(Refused):
        await images._GuardedBackend(PUBLIC).connect_tcp("images.example", listener)


async def test_backend_connects_to_the_address_it_checked(monkeypatch, listener):
    """One lookup, and the socket goes to that checked IP, never to the name again."""
    looked_up = _resolve_to(monkeypatch, "127.0.0.2")
    backend = images._GuardedBackend(ImageFetching(allowed_networks=["127.0.0.2/32"]))
    connected: list[str] = []
    inner = backend._inner.connect_tcp

    async def spy(host, port, **kw):
        connected.append(host)
        return await inner(host, port, **kw)

    backend._inner.connect_tcp = spy
    stream = await backend.connect_tcp("images.example", listener)
    await stream.aclose()
    assert looked_up == ["images.example"]
    assert connected == ["127.0.0.2"]


async def test_backend_in_any_mode_connects_to_loopback(listener):
    stream = await images._GuardedBackend(ImageFetching(fetch_remote="any")).connect_tcp("127.0.0.2", listener)
    await stream.aclose()


async def test_unknown_host_is_a_connect_error():
    with pytest.raises(httpcore.ConnectError):
        await images._GuardedBackend(PUBLIC).connect_tcp("no-such-host.invalid", 80)


# --- fetching (over httpx's mock transport) ------------------------------------------------


def _client(handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=False)


def _png(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "image/png"}, content=PNG)


def _redirects(n: int):
    """/0.png is the image; /k.png redirects to /(k-1).png."""

    def handler(request: httpx.Request) -> httpx.Response:
        k = int(request.url.path.strip("/").removesuffix(".png"))
        if k == 0:
            return _png(request)
        return httpx.Response(302, headers={"location": f"/{k - 1}.png"})

    return handler, f"http://images.example/{n}.png"


async def test_fetches_and_encodes():
    got = await fetch_images(_client(_png), ["http://images.example/cat.png"], PUBLIC)
    assert got == {"http://images.example/cat.png": ("image/png", "iVBORw0KGgpmYWtl")}


async def test_three_redirects_are_followed():
    handler, url = _redirects(3)
    got = await fetch_images(_client(handler), [url], PUBLIC)
    assert got[url][0] == "image/png"


async def test_four_redirects_are_refused():
    handler, url = _redirects(4)
    with pytest.raises(BadRequest) as e:
        await fetch_images(_client(handler), [url], PUBLIC)
    assert e.value.message == GENERIC


async def test_redirect_to_another_scheme_is_refused():
    def handler(request):
        return httpx.Response(302, headers={"location": "file:///etc/passwd"})

    with pytest.raises(BadRequest) as e:
        await fetch_images(_client(handler), ["http://images.example/a.png"], PUBLIC)
    assert e.value.message == GENERIC


async def test_at_most_twenty_images():
    urls = [f"http://images.example/{i}.png" for i in range(MAX_IMAGES)]
    assert len(await fetch_images(_client(_png), urls, PUBLIC)) == MAX_IMAGES
    seen = []

    def counting(request):
        seen.append(request.url)
        return _png(request)

    with pytest.raises(BadRequest) as e:
        await fetch_images(_client(counting), urls + ["http://images.example/one-more.png"], PUBLIC)
    assert "at most 20 remote images" in e.value.message
    assert seen == []  # refused before anything is fetched


async def test_off_refuses_every_remote_image_without_fetching():
    seen = []

    def handler(request):
        seen.append(request.url)
        return _png(request)

    with pytest.raises(BadRequest) as e:
        await fetch_images(_client(handler), ["http://images.example/a.png"], ImageFetching(fetch_remote="off"))
    assert "remote images are turned off" in e.value.message
    assert seen == []


async def test_non_http_url_is_named_as_such():
    with pytest.raises(BadRequest) as e:
        await fetch_images(_client(_png), ["ftp://images.example/a.png"], PUBLIC)
    assert e.value.message == "image 1 is not an http(s) URL; send it inline (base64)"


def _failing(kind: str):
    def handler(request: httpx.Request) -> httpx.Response:
        if kind == "refused address":
            raise Refused("images.example resolves to 127.0.0.1")
        if kind == "connection refused":
            raise httpx.ConnectError("[Errno 111] Connection refused")
        if kind == "read timeout":
            raise httpx.ReadTimeout("timed out")
        if kind == "404":
            return httpx.Response(404, text="no such route")
        if kind == "401":
            return httpx.Response(401, text="who are you")
        if kind == "not an image":
            return httpx.Response(200, headers={"content-type": "text/html"}, text="<html>admin</html>")
        if kind == "too large":
            return httpx.Response(200, headers={"content-type": "image/png"}, content=b"x" * 101)
        raise AssertionError(kind)

    return handler


FAILURES = ["refused address", "connection refused", "read timeout", "404", "401", "not an image", "too large"]


@pytest.mark.parametrize("kind", FAILURES)
async def test_every_failure_has_the_same_message(kind):
    """No status, no exception text, nothing telling a closed port from a blocked address."""
    with pytest.raises(BadRequest) as e:
        await fetch_images(_client(_failing(kind)), ["http://images.example/a.png"], PUBLIC, limit=100)
    assert (e.value.status, e.value.message) == (400, GENERIC)


async def test_the_message_counts_images_from_one():
    def handler(request):
        return _png(request) if request.url.path == "/good.png" else httpx.Response(404)

    urls = ["http://images.example/good.png", "http://images.example/bad.png"]
    with pytest.raises(BadRequest) as e:
        await fetch_images(_client(handler), urls, PUBLIC)
    assert e.value.message == "image 2 could not be fetched; send it inline (base64)"


async def test_one_deadline_for_all_images():
    async def trickle():
        for _ in range(1000):
            await asyncio.sleep(0.05)
            yield b"x"

    def handler(request):
        return httpx.Response(200, headers={"content-type": "image/png"}, content=trickle())

    policy = ImageFetching(deadline_seconds=0.3)
    urls = [f"http://images.example/{i}.png" for i in range(3)]
    start = time.monotonic()
    with pytest.raises(BadRequest) as e:
        await fetch_images(_client(handler), urls, policy)
    assert time.monotonic() - start < 1.0
    assert e.value.message == GENERIC


async def test_the_real_reason_is_logged_at_debug_without_the_query(caplog):
    caplog.set_level(logging.DEBUG, logger="quotio_core.images")
    with pytest.raises(BadRequest):
        await fetch_images(
            _client(_failing("404")), ["http://user:pw@images.example/a.png?token=s3cret#frag"], PUBLIC
        )
    (record,) = [r for r in caplog.records if r.name == "quotio_core.images"]
    assert record.levelno == logging.DEBUG
    text = record.getMessage()
    assert "HTTP 404" in text and "images.example/a.png" in text
    assert "s3cret" not in text and "pw" not in text and "frag" not in text


async def test_a_bug_is_not_turned_into_a_400():
    def handler(request):
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await fetch_images(_client(handler), ["http://images.example/a.png"], PUBLIC)


async def test_one_client_per_policy():
    clients = images.ImageClients()
    a = clients.get(ImageFetching())
    assert clients.get(ImageFetching()) is a
    assert clients.get(ImageFetching(fetch_remote="any")) is not a
    await clients.aclose()
    assert a.is_closed


# --- config ------------------------------------------------------------------------


def test_config_defaults_and_spelling():
    assert parse_file_config({}).images == ImageFetching(
        fetch_remote="public", allowed_networks=(), deadline_seconds=20
    )
    cfg = parse_file_config(
        {"images": {"fetch-remote": "any", "allowed-networks": ["10.0.0.0/8", "::1"], "deadline-seconds": 5}}
    ).images
    assert cfg.fetch_remote == "any"
    assert cfg.allowed_networks == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert cfg.deadline_seconds == 5


@pytest.mark.parametrize(
    "images, key",
    [
        ({"fetch-remote": "sometimes"}, "images.fetch-remote"),
        ({"allowed-networks": ["not-a-network"]}, "images.allowed-networks.0"),
        ({"deadline-seconds": 0}, "images.deadline-seconds"),
    ],
)
def test_config_errors_name_the_key(images, key):
    with pytest.raises(ConfigError, match=key):
        parse_file_config({"images": images})


async def test_a_malformed_url_is_a_failed_fetch_not_a_crash():
    with pytest.raises(BadRequest) as e:
        await fetch_images(_client(_png), ["http://[::1/cat.png"], PUBLIC)
    assert e.value.message == GENERIC


# --- TLS: the socket goes to the checked IP, the certificate is checked against the name ------


def _tls_files(tmp_path) -> tuple[str, str, str]:
    """(CA file, server cert file, server key file) for the name images.example."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quotio test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "images.example")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("images.example")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return tuple(str(p) for p in paths)


@pytest.fixture
def tls_image_host(tmp_path, monkeypatch):
    """An HTTPS image host on 127.0.0.2 whose certificate names images.example; every name
    resolves to 127.0.0.2 and the image client trusts the test CA. Yields (port, SNI names seen)."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    ca_file, cert_file, key_file = _tls_files(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _resolve_to(monkeypatch, "127.0.0.2")
    monkeypatch.setattr(httpx, "create_ssl_context", lambda **kw: ssl.create_default_context(cafile=ca_file))
    yield server.server_address[1], sni
    server.shutdown()
    server.server_close()


async def test_tls_verifies_the_name_while_connecting_to_the_checked_ip(tls_image_host, caplog):
    caplog.set_level(logging.DEBUG, logger="quotio_core.images")
    port, sni = tls_image_host
    policy = ImageFetching(allowed_networks=["127.0.0.2/32"])
    client = images.image_client(policy)
    try:
        url = f"https://images.example:{port}/cat.png"
        assert (await fetch_images(client, [url], policy))[url] == ("image/png", "iVBORw0KGgpmYWtl")
        assert sni == ["images.example"]
        # Same address, but the certificate does not name this host: refused like any failure.
        with pytest.raises(BadRequest) as e:
            await fetch_images(client, [f"https://other.example:{port}/cat.png"], policy)
        assert e.value.message == GENERIC
        assert "Hostname mismatch" in caplog.text
    finally:
        await client.aclose()
