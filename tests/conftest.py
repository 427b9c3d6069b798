from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fakes.upstreams import FakeUpstream
from tests.gateway_proc import GatewayProcess, start_gateway

CLIENT_KEY = "test-client-key-0123456789"
MGMT_KEY = "mgmt-secret-0123456789"
CLAUDE_TOKENS = ("sk-ant-oat01-token-aaaa", "sk-ant-oat01-token-bbbb")
CLAUDE_API_KEY = "sk-ant-api03-config-key-cccc"
OPENAI_KEY = "sk-proj-openai-key-dddd"
COMPAT_KEY = "sk-compat-key-eeee"
GEMINI_KEY = "AIzaSy-gemini-key-ffff"
ALL_SECRETS = (CLIENT_KEY, MGMT_KEY, *CLAUDE_TOKENS, CLAUDE_API_KEY, OPENAI_KEY, COMPAT_KEY, GEMINI_KEY)


def claude_file(token: str, email: str, **extra) -> dict:
    return {
        "type": "claude",
        "email": email,
        "access_token": token,
        "refresh_token": "rt-" + token,
        "expired": "2099-01-01T00:00:00Z",
        **extra,
    }


@pytest.fixture(scope="session")
def confdir(tmp_path_factory) -> str:
    """One mitmproxy CA for every gateway of the run: generating it is slow."""
    return str(tmp_path_factory.mktemp("mitmproxy-conf"))


@pytest.fixture(scope="session")
def claude_up() -> Iterator[FakeUpstream]:
    with FakeUpstream("Hello from Claude fake") as f:
        yield f


@pytest.fixture(scope="session")
def openai_up() -> Iterator[FakeUpstream]:
    with FakeUpstream("Hello from OpenAI fake") as f:
        yield f


@pytest.fixture(scope="session")
def compat_up() -> Iterator[FakeUpstream]:
    with FakeUpstream("Hello from compat fake") as f:
        yield f


@pytest.fixture(scope="session")
def gemini_up() -> Iterator[FakeUpstream]:
    with FakeUpstream("Hello from Gemini fake") as f:
        yield f


@pytest.fixture(scope="session")
def cliproxy_up() -> Iterator[FakeUpstream]:
    """Stands in for CLIProxyAPI behind the passthrough."""
    with FakeUpstream("Hello from CLIProxyAPI") as f:
        yield f


def gateway_config(claude_up, openai_up, compat_up, gemini_up) -> dict:
    return {
        "api-keys": [CLIENT_KEY],
        "remote-management": {"secret-key": MGMT_KEY},
        "claude-api-key": [{"api-key": CLAUDE_API_KEY, "prefix": "key"}],
        "codex-api-key": [{"api-key": OPENAI_KEY}],
        "gemini-api-key": [{"api-key": GEMINI_KEY}],
        "openai-compatibility": [
            {
                "name": "local",
                "base-url": compat_up.url + "/v1",
                "api-key-entries": [{"api-key": COMPAT_KEY}],
                "models": [{"name": "upstream-model-x", "alias": "fast"}],
            }
        ],
        "upstreams": {
            "claude": {"base-url": claude_up.url},
            "codex": {"api-key-base-url": openai_up.url + "/v1"},
            "gemini": {"api-key-base-url": gemini_up.url},
        },
    }


@pytest.fixture(scope="session")
def gateway(
    tmp_path_factory, confdir, claude_up, openai_up, compat_up, gemini_up, cliproxy_up
) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("gateway")
    gw = start_gateway(
        root,
        gateway_config(claude_up, openai_up, compat_up, gemini_up),
        env={"QUOTIO_CLI_PROXY_PORT": str(cliproxy_up.port)},
        args=["-w", str(root / "flows.mitm")],
        auth_files={
            "claude-a@example.com.json": claude_file(CLAUDE_TOKENS[0], "a@example.com"),
            "claude-b@example.com.json": claude_file(CLAUDE_TOKENS[1], "b@example.com"),
        },
        confdir=confdir,
    )
    gw.extra["flows"] = root / "flows.mitm"
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _clear_fakes(request):
    for name in ("claude_up", "openai_up", "compat_up", "gemini_up", "cliproxy_up"):
        if name in request.fixturenames:
            request.getfixturevalue(name).clear()
    gw = request.getfixturevalue("gateway") if "gateway" in request.fixturenames else None
    yield
    if isinstance(gw, GatewayProcess) and gw.proc.poll() is None:
        # Injected upstream errors cool credentials down; start each test afresh.
        import httpx

        httpx.post(
            gw.url + "/v0/management/reset-quota", headers={"authorization": f"Bearer {MGMT_KEY}"}
        ).raise_for_status()


os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
