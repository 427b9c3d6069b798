import pytest

from quotio_core.clientauth import authorize, is_loopback, presented_key
from quotio_core.pool.credentials import key_id

KEYS = ["client-key-one", "client-key-two"]


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({"authorization": "Bearer client-key-one"}, {}, "client-key-one"),
        ({"authorization": "bearer   client-key-one  "}, {}, "client-key-one"),
        ({"authorization": "BEARER client-key-one"}, {}, "client-key-one"),
        ({"x-api-key": "client-key-one"}, {}, "client-key-one"),
        ({"x-goog-api-key": "client-key-one"}, {}, "client-key-one"),
        ({}, {"key": "client-key-one"}, "client-key-one"),
        ({}, {"auth_token": "client-key-one"}, "client-key-one"),
        # Bearer wins over the others; x-api-key over x-goog-api-key; headers over query.
        ({"authorization": "Bearer a", "x-api-key": "b", "x-goog-api-key": "c"}, {"key": "d"}, "a"),
        ({"x-api-key": "b", "x-goog-api-key": "c"}, {"key": "d"}, "b"),
        ({"x-goog-api-key": "c"}, {"key": "d", "auth_token": "e"}, "c"),
        ({}, {"key": "d", "auth_token": "e"}, "d"),
        # A non-bearer Authorization is not a key; fall through to the other places.
        ({"authorization": "Basic dXNlcjpwYXNz", "x-api-key": "b"}, {}, "b"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, {}, None),
        ({"x-api-key": ""}, {"key": ""}, None),
        ({}, {}, None),
    ],
)
def test_presented_key(headers: dict, query: dict, expected: str | None) -> None:
    assert presented_key(headers, query) == expected


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("::1%lo0", True),
        ("10.0.0.5", False),
        ("192.168.1.2", False),
        ("::ffff:10.0.0.5", False),
        ("fe80::1%eth0", False),
        ("0.0.0.0", False),
        ("localhost", False),
        ("", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
@pytest.mark.parametrize("presented", [None, "anything"])
def test_no_keys_loopback_allowed(ip: str, presented: str | None) -> None:
    d = authorize([], presented, ip)
    assert d.allowed
    assert d.status == 200
    assert d.key_id is None


@pytest.mark.parametrize("ip", ["10.0.0.5", "192.168.1.20", "::ffff:10.0.0.5", "2001:db8::1"])
def test_no_keys_remote_refused(ip: str) -> None:
    d = authorize([], "anything", ip)
    assert not d.allowed
    assert d.status == 403
    assert "api-keys" in d.message


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.0.0.5"])
def test_keys_missing_is_401(ip: str) -> None:
    d = authorize(KEYS, None, ip)
    assert (d.allowed, d.status) == (False, 401)
    assert "missing" in d.message


@pytest.mark.parametrize("presented", ["wrong", "", "client-key-one ", "CLIENT-KEY-ONE", "client-key"])
@pytest.mark.parametrize("ip", ["127.0.0.1", "10.0.0.5"])
def test_keys_invalid_is_401(presented: str, ip: str) -> None:
    d = authorize(KEYS, presented, ip)
    assert (d.allowed, d.status) == (False, 401)
    assert "invalid" in d.message
    assert presented not in d.message or presented == ""


@pytest.mark.parametrize("presented", KEYS)
@pytest.mark.parametrize("ip", ["127.0.0.1", "10.0.0.5"])
def test_keys_valid_allowed_from_anywhere(presented: str, ip: str) -> None:
    d = authorize(KEYS, presented, ip)
    assert d.allowed
    assert d.key_id == key_id(presented)
    assert presented not in d.key_id


def test_non_ascii_key_does_not_crash() -> None:
    assert authorize(KEYS, "clé-ünïcode", "10.0.0.5").status == 401
    assert authorize(["clé-ünïcode"], "clé-ünïcode", "10.0.0.5").allowed
