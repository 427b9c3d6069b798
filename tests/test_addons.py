"""The addons in a real mitmproxy context, on test flows: no sockets needed.

Here a client can come from a non-loopback address, which the end-to-end
tests (loopback only on these machines) cannot produce.
"""

from __future__ import annotations

import json

import pytest
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow, tutils

from addons.clientauth import ClientAuth
from addons.core import GatewayCore
from addons.meta import GatewayHolder
from addons.intake import Intake
from addons.management import Management
from addons.router import Router


@pytest.fixture
def holder(tmp_path, monkeypatch):
    monkeypatch.setenv("QUOTIO_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("QUOTIO_AUTH_DIR", str(tmp_path / "auth"))
    return tmp_path


def _flow(path: str, peer: str, mode: ProxyMode, **headers):
    f = tflow.tflow(req=tutils.treq(method=b"POST", path=path.encode(), content=b"{}"))
    f.client_conn.peername = (peer, 40000)
    f.client_conn.proxy_mode = mode
    # What a local SDK sends (the gateway keeps the client's own Host).
    f.request.headers["host"] = "127.0.0.1:8317"
    f.request.headers["content-type"] = "application/json"
    for k, v in headers.items():
        f.request.headers[k.replace("_", "-")] = v
    return f


def _setup(tmp_path, config_text: str):
    (tmp_path / "config.yaml").write_text(config_text)
    h = GatewayHolder()
    intake, auth = Intake(h), ClientAuth(h)

    class Auth:
        """Intake then ClientAuth, as they run in addons/quotio.py."""

        def requestheaders(self, flow):
            intake.requestheaders(flow)
            auth.requestheaders(flow)

    return h, GatewayCore(h), Auth(), Management(h), Router(h)


@pytest.mark.parametrize(
    "peer, status",
    [("127.0.0.1", None), ("::1", None), ("::ffff:127.0.0.1", None), ("10.1.2.3", 403), ("192.168.0.9", 403)],
)
def test_without_client_keys_only_loopback_is_served(holder, peer, status):
    h, core, auth, *_ = _setup(holder, "port: 8317\n")
    with taddons.context(core) as tctx:
        tctx.configure(core, quotio_port=8317)
        h.listen_mode = ProxyMode.parse(h.gateway.config.listen_mode)
        f = _flow("/v1/messages", peer, h.listen_mode)
        auth.requestheaders(f)
        if status is None:
            assert f.response is None
        else:
            assert f.response.status_code == 403
            body = json.loads(f.response.content)
            assert body["error"]["type"] == "permission_error"
            assert "api-keys" in body["error"]["message"]
        h.gateway.records.close()


def test_remote_client_with_key_is_served(holder):
    h, core, auth, *_ = _setup(holder, "api-keys: [k-123]\n")
    with taddons.context(core) as tctx:
        tctx.configure(core, quotio_port=8317)
        h.listen_mode = ProxyMode.parse(h.gateway.config.listen_mode)
        ok = _flow("/v1/chat/completions", "10.1.2.3", h.listen_mode, authorization="Bearer k-123")
        auth.requestheaders(ok)
        assert ok.response is None
        bad = _flow("/v1/chat/completions", "10.1.2.3", h.listen_mode, authorization="Bearer nope")
        auth.requestheaders(bad)
        assert bad.response.status_code == 401
        assert json.loads(bad.response.content)["error"]["code"] == "invalid_api_key"
        h.gateway.records.close()


def test_flows_of_other_listeners_are_not_touched(holder):
    h, core, auth, *_ = _setup(holder, "api-keys: [k-123]\n")
    with taddons.context(core) as tctx:
        tctx.configure(core, quotio_port=8317)
        h.listen_mode = ProxyMode.parse(h.gateway.config.listen_mode)
        f = _flow("/v1/messages", "10.1.2.3", ProxyMode.parse("regular@8080"))
        auth.requestheaders(f)
        assert f.response is None
        assert h.flows.get(f) is None
        h.gateway.records.close()


@pytest.mark.parametrize(
    "config, peer, headers, status",
    [
        ("", "127.0.0.1", {}, 200),
        ("", "10.1.2.3", {}, 403),
        ("remote-management: {secret-key: s3cret}\n", "127.0.0.1", {}, 401),
        ("remote-management: {secret-key: s3cret}\n", "127.0.0.1", {"x_management_key": "s3cret"}, 200),
        ("remote-management: {secret-key: s3cret}\n", "10.1.2.3", {"x_management_key": "s3cret"}, 403),
        ("remote-management: {secret-key: s3cret, allow-remote: true}\n", "10.1.2.3", {"authorization": "Bearer s3cret"}, 200),
        ("remote-management: {secret-key: s3cret, allow-remote: true}\n", "10.1.2.3", {}, 401),
    ],
)
async def test_management_access_rules(holder, config, peer, headers, status):
    h, core, auth, mgmt, _ = _setup(holder, config or "{}\n")
    with taddons.context(core, mgmt) as tctx:
        tctx.configure(core, quotio_port=8317)
        h.listen_mode = ProxyMode.parse(h.gateway.config.listen_mode)
        f = _flow("/v0/management/auth", peer, h.listen_mode, **headers)
        f.request.method = "GET"
        auth.requestheaders(f)
        await mgmt.request(f)
        assert f.response.status_code == status
        if status == 200:
            # The management key is not kept on the flow.
            assert "s3cret" not in json.dumps(f.get_state(), default=repr)
        h.gateway.records.close()


def test_bad_config_is_an_options_error(holder):
    h, core, *_ = _setup(holder, "port: not-a-port\n")
    from mitmproxy import exceptions

    with taddons.context(core) as tctx:
        with pytest.raises(exceptions.OptionsError, match=r"config.yaml: key port"):
            tctx.configure(core, quotio_port=0, quotio_config=str(holder / "config.yaml"))


async def test_unexpected_routing_error_is_a_500_not_a_passthrough(holder, monkeypatch):
    h, core, auth, mgmt, router = _setup(holder, "{}\n")
    with taddons.context(core) as tctx:
        tctx.configure(core, quotio_port=8317)
        h.listen_mode = ProxyMode.parse(h.gateway.config.listen_mode)

        def broken(*a, **k):
            raise KeyError("translator bug")

        monkeypatch.setattr(h.gateway, "draft", broken)
        f = _flow("/v1/messages", "127.0.0.1", h.listen_mode, x_api_key="client-key")
        f.request.content = b'{"model": "claude-x", "messages": []}'
        auth.requestheaders(f)
        await router.request(f)
        assert f.response.status_code == 500
        body = json.loads(f.response.content)
        assert body["type"] == "error" and body["error"]["code"] == "internal_error"
        h.gateway.records.close()
