"""The Vertex login module against the fake Google token endpoint and Vertex API."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from quotio_core.pool.credentials import credential_from_auth_file
from quotio_core.providers.login import InvalidGrant, LoginContext, LoginError
from quotio_core.providers import login_module, login_providers
from quotio_core.providers.vertex import login
from tests.fakes.upstreams import closed_port
from tests.fakes.vertex import FakeVertex


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVertex]:
    with FakeVertex() as f:
        yield f


@pytest.fixture(scope="module")
def sa(fake: FakeVertex) -> dict:
    return fake.new_service_account(project="proj-login", location="europe-west4")


@pytest.fixture
async def http() -> Iterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def ctx_for(fake: FakeVertex, http: httpx.AsyncClient, **options) -> LoginContext:
    return LoginContext(urls=fake.upstreams, http=http, options=options)


def claims_of(jwt_text: str) -> tuple[dict, dict]:
    def part(i: int) -> dict:
        raw = jwt_text.split(".")[i]
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))

    return part(0), part(1)


# --- the contract ------------------------------------------------------------------


def test_registered_as_a_service_account_login() -> None:
    assert "vertex" in login_providers()
    module = login_module("vertex")
    assert module is login
    assert module.FLOWS == ("service-account",)
    assert module.REFRESH_LEAD is None
    assert not hasattr(module, "refresh")  # the file never expires; bearer() is re-called instead


# --- import --------------------------------------------------------------------------


async def test_import_writes_cliproxyapi_vertex_file(fake, sa, http) -> None:
    data = await login.import_service_account(ctx_for(fake, http, location="europe-west4"), json.dumps(sa))
    assert data == {
        "type": "vertex",
        "service_account": sa,
        "project_id": "proj-login",
        "email": sa["client_email"],
        "location": "europe-west4",
    }
    assert login.file_name(data) == "vertex-proj-login.json"
    cred = credential_from_auth_file(login.file_name(data), data)
    assert (cred.provider, cred.kind, cred.email) == ("vertex", "service-account", sa["client_email"])
    assert "PRIVATE KEY" not in cred.secret


async def test_import_takes_a_parsed_key_and_defaults_the_location(fake, sa, http) -> None:
    data = await login.import_service_account(ctx_for(fake, http), sa)
    assert data["location"] == "us-central1"
    assert data["service_account"] is not sa  # the caller's dict is not the file's


async def test_import_repairs_escaped_newlines_in_the_key(fake, sa, http) -> None:
    pasted = {**sa, "private_key": sa["private_key"].replace("\n", "\\n")}
    data = await login.import_service_account(ctx_for(fake, http), pasted)
    assert data["service_account"]["private_key"] == sa["private_key"]


def public_only_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"type": "authorized_user"}, "'type'"),
        ({"type": None}, "'type'"),
        ({"client_email": None}, "'client_email'"),
        ({"client_email": ""}, "'client_email'"),
        ({"client_email": "not-an-email"}, "'client_email'"),
        ({"private_key": None}, "'private_key'"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"},
         "'private_key'"),
        ({"private_key": "just text"}, "'private_key'"),
        ({"project_id": None}, "'project_id'"),
        ({"project_id": "  "}, "'project_id'"),
        ({"token_uri": None}, "'token_uri'"),
        ({"token_uri": "ftp://x"}, "'token_uri'"),
    ],
)
async def test_import_names_the_bad_field(fake, sa, http, change: dict, named: str) -> None:
    key = {k: v for k, v in {**sa, **change}.items() if v is not None}
    with pytest.raises(LoginError) as e:
        await login.import_service_account(ctx_for(fake, http), key)
    assert named in str(e.value)
    assert e.value.code == "invalid_key"
    assert "PRIVATE KEY" not in str(e.value) and sa["private_key"][40:80] not in str(e.value)


async def test_import_refuses_a_public_key(fake, sa, http) -> None:
    with pytest.raises(LoginError, match="'private_key'") as e:
        await login.import_service_account(ctx_for(fake, http), {**sa, "private_key": public_only_pem()})
    assert "PUBLIC KEY" not in str(e.value)


@pytest.mark.parametrize("key", ["{not json", "[1, 2]", b"\xff\xfe", 42])
async def test_import_refuses_what_is_not_a_key_object(fake, http, key) -> None:
    with pytest.raises(LoginError) as e:
        await login.import_service_account(ctx_for(fake, http), key)
    assert "service-account key" in str(e.value)


@pytest.mark.parametrize("location", ["us central1", "us-central1/../x", "-x", "ÿ"])
async def test_import_refuses_a_bad_location(fake, sa, http, location: str) -> None:
    with pytest.raises(LoginError, match="location"):
        await login.import_service_account(ctx_for(fake, http, location=location), sa)


# --- bearer ------------------------------------------------------------------------


async def test_bearer_signs_an_assertion_and_gets_a_token(fake, sa, http) -> None:
    ctx = ctx_for(fake, http, location="europe-west4")
    data = await login.import_service_account(ctx, sa)
    before = time.time()
    token = await login.bearer(ctx, data)
    assert token.token == fake.issued[-1]
    assert before + fake.token_lifetime - 5 <= token.expires_at <= time.time() + fake.token_lifetime
    claims = fake.assertions[-1]
    assert claims["iss"] == claims["sub"] == sa["client_email"]
    assert claims["aud"] == fake.token_url
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600
    grant = fake.requests[-1]
    assert grant.headers["content-type"] == "application/x-www-form-urlencoded"
    assert b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in grant.body
    assert sa["private_key"].encode() not in grant.body
    # The token it got opens the Vertex API for that project and location.
    r = await http.post(
        f"{fake.url}/v1/projects/proj-login/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent",
        headers={"authorization": f"Bearer {token.token}"},
        json={"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]},
    )
    assert r.status_code == 200
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == "Hello from Vertex fake"


def test_assertion_header_names_the_key(sa) -> None:
    header, claims = claims_of(login.assertion(sa, "https://oauth2.googleapis.com/token", now=1_700_000_000))
    assert header == {"alg": "RS256", "typ": "JWT", "kid": sa["private_key_id"]}
    assert (claims["iat"], claims["exp"]) == (1_700_000_000, 1_700_003_600)


async def test_each_bearer_is_a_new_token(fake, sa, http) -> None:
    ctx = ctx_for(fake, http)
    data = {"type": "vertex", "service_account": sa, "project_id": "proj-login"}
    first, second = await login.bearer(ctx, data), await login.bearer(ctx, data)
    assert first.token != second.token


async def test_bearer_reads_quotio_ts_string_service_account(fake, sa, http) -> None:
    token = await login.bearer(ctx_for(fake, http), {"provider": "vertex", "serviceAccountJson": json.dumps(sa)})
    assert token.token == fake.issued[-1]


async def test_revoked_key_is_invalid_grant(fake, http) -> None:
    doomed = fake.new_service_account(project="proj-revoked")
    ctx = ctx_for(fake, http)
    data = await login.import_service_account(ctx, doomed)
    await login.bearer(ctx, data)
    fake.revoke(doomed["client_email"])
    with pytest.raises(InvalidGrant) as e:
        await login.bearer(ctx, data)
    assert e.value.code == "invalid_grant"
    assert "PRIVATE" not in str(e.value)


async def test_unknown_account_is_invalid_grant(fake, http) -> None:
    stranger = FakeVertex().new_service_account(project="elsewhere")  # never registered here
    with pytest.raises(InvalidGrant, match="account not found"):
        await login.bearer(ctx_for(fake, http), {"service_account": stranger})


async def test_damaged_file_is_a_login_error(fake, sa, http) -> None:
    with pytest.raises(LoginError, match="client_email"):
        await login.bearer(ctx_for(fake, http), {"service_account": {"private_key": sa["private_key"]}})
    with pytest.raises(LoginError, match="private_key"):
        await login.bearer(ctx_for(fake, http), {"service_account": {**sa, "private_key": "x"}})


async def test_unreachable_token_endpoint(sa, http) -> None:
    urls = {"token-url": f"http://127.0.0.1:{closed_port()}/token"}
    with pytest.raises(LoginError, match="ConnectError") as e:
        await login.bearer(LoginContext(urls=urls, http=http), {"service_account": sa})
    assert not isinstance(e.value, InvalidGrant)


# --- the fake itself holds the line --------------------------------------------------


async def test_fake_refuses_bad_assertions(fake, sa, http) -> None:
    """The fake checks what Google checks, so the tests above prove something."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    key = RSAKey.import_key(sa["private_key"])
    now = int(time.time())
    good = {"iss": sa["client_email"], "sub": sa["client_email"], "aud": fake.token_url,
            "scope": "https://www.googleapis.com/auth/cloud-platform", "iat": now, "exp": now + 3600}

    async def grant(claims: dict, alg: str = "RS256", signer=key, grant_type=login.JWT_BEARER_GRANT):
        signed = jwt.encode({"alg": alg}, claims, signer)
        r = await http.post(fake.token_url, data={"grant_type": grant_type, "assertion": signed})
        return r.status_code, r.json()

    assert (await grant(good))[0] == 200
    for bad in ({"exp": now + 7200}, {"aud": "https://oauth2.googleapis.com/token"},
                {"scope": "https://www.googleapis.com/auth/userinfo.email"}, {"sub": "someone@else"},
                {"iat": now - 7200, "exp": now - 3600}):
        status, body = await grant({**good, **bad})
        assert (status, body["error"]) == (400, "invalid_grant"), bad
    other = RSAKey.generate_key(2048)
    assert (await grant(good, signer=other))[1]["error_description"] == "Invalid JWT Signature."
    assert (await grant(good, grant_type="client_credentials"))[1]["error"] == "unsupported_grant_type"


async def test_fake_api_checks_token_project_location_and_401_once(fake, sa, http) -> None:
    ctx = ctx_for(fake, http)
    token = (await login.bearer(ctx, {"service_account": sa})).token
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

    async def post(project="proj-login", location="europe-west4", bearer=token):
        url = (f"{fake.url}/v1/projects/{project}/locations/{location}"
               "/publishers/google/models/gemini-2.5-pro:generateContent")
        return await http.post(url, headers={"authorization": f"Bearer {bearer}"}, json=body)

    assert (await post()).status_code == 200
    assert (await post(bearer="ya29.made-up")).json()["error"]["status"] == "UNAUTHENTICATED"
    assert (await post(project="someone-else")).json()["error"]["status"] == "PERMISSION_DENIED"
    assert (await post(location="us-central1")).status_code == 404
    fake.reject_once(token)
    assert (await post()).status_code == 401
    assert (await post()).status_code == 200
