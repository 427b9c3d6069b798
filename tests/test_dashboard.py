"""The dashboard page and the `quotio usage` / `quotio quotas` tables, against a real gateway.

One gateway for the module, its quota URLs on the quota fake: Claude account
A has room, B's five-hour window is used up (so the quota book cools it), C
needs a new login, Gemini account G has a bucket per model, and a Claude API
key and an OpenAI key have no subscription quota. A few requests go through
it first; the token counts below follow from the fake upstream's word counting.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from click.testing import CliRunner

from quotio_core.admin import dashboard
from quotio_core.cli import main
from tests.cdp import Browser, find_chromium
from tests.conftest import claude_file
from tests.fakes.quota import DAY, HOUR, FakeQuota, FakeWindow
from tests.fakes.upstreams import FakeUpstream, closed_port
from tests.gateway_proc import GatewayProcess, start_gateway

CLIENT_KEY = "dash-client-key-0123456789"
MGMT_KEY = "dash-mgmt-secret-0123456789"
TOKEN_A = "sk-ant-oat01-dash-aaaa"
TOKEN_B = "sk-ant-oat01-dash-bbbb"
TOKEN_G = "ya29.dash-gemini-gggg"
CLAUDE_API_KEY = "sk-ant-api03-dash-key-cccc"
OPENAI_KEY = "sk-proj-dash-openai-dddd"
MGMT = {"authorization": f"Bearer {MGMT_KEY}"}
CLAUDE_MODEL = "claude-sonnet-4-20250514"
CLAUDE_PROMPT = "one two three four five"  # 5 prompt tokens; the reply "Hello from Claude fake" is 4
OPENAI_PROMPT = "alpha beta gamma"  # 3; "Hello from OpenAI fake" is 4
SCREENSHOT_ENV = "QUOTIO_SCREENSHOT"


@dataclass
class Dash:
    gw: GatewayProcess
    claude: FakeUpstream
    openai: FakeUpstream
    quota: FakeQuota


def _ask_claude(gw: GatewayProcess, stream: bool = False) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0)
    kwargs = {"model": CLAUDE_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": CLAUDE_PROMPT}]}
    if stream:
        with client.messages.stream(**kwargs) as s:
            s.until_done()
    else:
        client.messages.create(**kwargs)


def _ask_openai(gw: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": OPENAI_PROMPT}])


@pytest.fixture(scope="module")
def dash(tmp_path_factory, confdir) -> Iterator[Dash]:
    root = tmp_path_factory.mktemp("dashboard")
    with (
        FakeUpstream("Hello from Claude fake") as claude,
        FakeUpstream("Hello from OpenAI fake") as oai,
        FakeQuota() as quota,
    ):
        now = time.time()
        quota.add("claude", TOKEN_A, windows={
            "five_hour": FakeWindow(42, resets_at=now + 3 * HOUR), "seven_day": FakeWindow(10, resets_at=now + 4 * DAY),
        })
        quota.add("claude", TOKEN_B, windows={
            "five_hour": FakeWindow(100, resets_at=now + 2 * HOUR), "seven_day": FakeWindow(60, resets_at=now + 4 * DAY),
        })
        quota.add("gemini", TOKEN_G, windows={
            "gemini-2.5-pro": FakeWindow(35, resets_at=now + 20 * HOUR),
            "gemini-2.5-flash": FakeWindow(5, resets_at=now + 20 * HOUR),
        })
        upstreams = quota.upstreams
        upstreams["claude"]["base-url"] = claude.url
        upstreams["codex"]["api-key-base-url"] = oai.url + "/v1"
        config = {
            "api-keys": [CLIENT_KEY],
            "remote-management": {"secret-key": MGMT_KEY},
            "claude-api-key": [{"api-key": CLAUDE_API_KEY, "prefix": "key"}],
            "codex-api-key": [{"api-key": OPENAI_KEY}],
            "upstreams": upstreams,
        }
        gw = start_gateway(
            root,
            config,
            auth_files={
                "claude-a@example.com.json": claude_file(TOKEN_A, "a@example.com"),
                "claude-b@example.com.json": claude_file(TOKEN_B, "b@example.com"),
                "claude-c@example.com.json": claude_file("", "c@example.com"),
                "gemini-g@example.com-fake-project-123.json": {
                    "type": "gemini", "email": "g@example.com", "project_id": "fake-project-123",
                    "token": {"access_token": TOKEN_G, "refresh_token": "rt-g", "expiry": "2099-01-01T00:00:00Z"},
                },
            },
            args=["-w", str(root / "flows.mitm")],
            confdir=confdir,
        )
        try:
            # Quotas first: B's spent window cools it, so every Claude request goes to A.
            httpx.get(f"{gw.url}/v0/management/usage/quotas/all", params={"refresh": "true"}, headers=MGMT).raise_for_status()
            for stream in (False, False, False, True):
                _ask_claude(gw, stream)
            _ask_openai(gw)
            _ask_openai(gw)
            oai.fail_next(400)
            with pytest.raises(openai.BadRequestError):
                _ask_openai(gw)
            yield Dash(gw, claude, oai, quota)
        finally:
            gw.stop()


def _run(*args: str, env: dict | None = None):
    base = {"QUOTIO_CONFIG": None, "QUOTIO_HOST": None, "QUOTIO_PORT": None}
    return CliRunner().invoke(main, list(args), env={**base, **(env or {})})


# --- quotio usage / quotio quotas -----------------------------------------------------------------
def test_usage_table_has_the_fakes_token_counts(dash: Dash):
    result = _run("usage", "--window", "1h", "--url", dash.gw.url, "--key", MGMT_KEY)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Usage, last 1h" in out
    assert "Requests: 7 (7 attempts), errors: 1 (14.3%)" in out
    assert "Tokens: 50 (26 in, 24 out, 0 cached, 0 reasoning)" in out
    # PROVIDER  REQUESTS  ERRORS  ERROR RATE  CANCELLED  TOKENS IN  TOKENS OUT  CACHED  P50  P95  TTFB P50
    assert re.search(r"^PROVIDER\s+REQUESTS\s+ERRORS\s+ERROR RATE\s+CANCELLED\s+TOKENS IN\s+TOKENS OUT\s+CACHED\s+P50\s+P95", out, re.MULTILINE)
    assert re.search(r"^claude\s+4\s+0\s+0\.0%\s+0\s+20\s+16\s+0\s+\d+ ms\s+\d+ ms", out, re.MULTILINE)
    assert re.search(r"^codex\s+3\s+1\s+33\.3%\s+0\s+6\s+8\s+0\s", out, re.MULTILINE)
    assert re.search(r"^claude-a@example\.com\.json\s+claude\s+4\s+0\s+0\.0%\s+0\s+20\s+16\s", out, re.MULTILINE)
    assert re.search(rf"^{re.escape(CLAUDE_MODEL)}\s+4\s+0\s+0\.0%\s+0\s+20\s+16\s", out, re.MULTILINE)
    assert re.search(r"^gpt-4o\s+3\s+1\s+33\.3%\s+0\s+6\s+8\s", out, re.MULTILINE)
    # Columns line up: every row of the provider table is as wide as its header.
    block = out.split("\n\n")[1].splitlines()
    assert len({len(line) for line in block}) == 1


def test_usage_json_is_the_api_answer(dash: Dash):
    result = _run("usage", "--window", "1h", "--url", dash.gw.url, "--key", MGMT_KEY, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["window"] == "1h"
    assert body["totals"]["requests"] == 7 and body["totals"]["input_tokens"] == 26


def test_quotas_table_shows_windows_status_and_trouble(dash: Dash):
    result = _run("quotas", "--url", dash.gw.url, "--key", MGMT_KEY)
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"^PROVIDER\s+ACCOUNT\s+STATUS\s+PLAN\s+WINDOW\s+LEFT\s+USED\s+RESETS IN\s+NOTE$", out, re.MULTILINE)
    # A: 42 % of the five-hour window used, resetting in about 3 h; the weekly one below it.
    assert re.search(r"^claude\s+a@example\.com\s+ready\s+-\s+five_hour\s+58%\s+42%\s+2h 5\dm$", out, re.MULTILINE)
    assert re.search(r"^\s+seven_day\s+90%\s+10%\s+3d 23h$", out, re.MULTILINE)
    assert re.search(r"^claude\s+b@example\.com\s+cooling\s+-\s+five_hour\s+0%\s+100%\s+1h 5\dm$", out, re.MULTILINE)
    assert re.search(r"^gemini\s+g@example\.com\s+ready\s+-\s+gemini-2\.5-pro\s+65%\s+35%\s+19h 5\dm$", out, re.MULTILINE)
    assert re.search(r"^\s+gemini-2\.5-flash\s+95%\s+5%\s+19h 5\dm$", out, re.MULTILINE)
    assert re.search(r"^claude\s+c@example\.com\s+needs-login\s+.*quota forbidden: the account needs a new login$", out, re.MULTILINE)
    assert re.search(r"^claude\s+claude-api-key\[0\] [0-9a-f]+\s+ready\s+-\s+-\s+-\s+-\s+-\s+quota unsupported: API keys", out, re.MULTILINE)
    assert re.search(r"^codex\s+codex-api-key\[0\] [0-9a-f]+\s+ready\s+.*quota unsupported", out, re.MULTILINE)
    trouble = out.split("Cooling and broken:\n", 1)[1]
    assert re.search(r"^b@example\.com\s+cooling\s+quota window exhausted \(five_hour\)\s+ends in 1h 5\dm$", trouble, re.MULTILINE)
    assert re.search(r"^c@example\.com\s+needs login\s+log in again: quotio login claude\s+-$", trouble, re.MULTILINE)


def test_quotas_refresh_fetches_again(dash: Dash):
    before = len(dash.quota.requests)
    result = _run("quotas", "--refresh", "--json", "--url", dash.gw.url, "--key", MGMT_KEY)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    # A, B and G are fetched again (C needs a login; API keys have no endpoint).
    assert len(dash.quota.requests) == before + 3
    a = next(q for q in body["quotas"] if q["email"] == "a@example.com")
    assert [(w["name"], w["remaining_pct"]) for w in a["windows"]] == [("five_hour", 58.0), ("seven_day", 90.0)]
    assert any(c["credential_id"] == "claude-b@example.com.json" for c in body["pool"]["cooldowns"])


def test_defaults_come_from_the_config(dash: Dash, tmp_path):
    # A wildcard bind is reached on loopback; the key is the config's secret.
    config = tmp_path / "config.yaml"
    config.write_text(f"host: 0.0.0.0\nport: {dash.gw.port}\nremote-management:\n  secret-key: {MGMT_KEY}\n")
    result = _run("usage", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert re.search(r"^claude\s+4\s", result.output, re.MULTILINE)


def test_a_gateway_that_is_not_running_is_one_clear_line():
    url = f"http://127.0.0.1:{closed_port()}"
    for command in ("usage", "quotas"):
        result = _run(command, "--url", url, "--key", MGMT_KEY)
        assert result.exit_code == 1
        assert result.output.strip() == f"Error: no gateway answers at {url}; is it running? (`quotio serve` starts it)"


def test_a_wrong_key_is_named(dash: Dash):
    result = _run("quotas", "--url", dash.gw.url, "--key", "wrong")
    assert result.exit_code == 1
    assert "the gateway refused the management key (invalid management key)" in result.output
    assert "wrong" not in result.output.replace("--key", "")


# --- the page as served ----------------------------------------------------------------------------
def test_page_inlines_its_assets_under_a_policy():
    html = dashboard.page().decode()
    assert "<script src=" not in html and 'rel="stylesheet"' not in html
    assert f"Chart.js v{dashboard.CHART_JS_VERSION}" in html
    assert "sourceMappingURL" not in html
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)[1]
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 2
    for text in scripts:
        assert dashboard._sha256(text) in policy
    assert "connect-src 'self'" in policy and "'unsafe-inline'" not in policy
    license_file = Path(dashboard.__file__).parent / "static" / "chart.js-LICENSE.md"
    assert "MIT License" in license_file.read_text()


def test_page_is_served_without_the_key_but_data_is_not(dash: Dash):
    page = httpx.get(f"{dash.gw.url}/v0/management/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    assert page.content == dashboard.page()
    assert httpx.get(f"{dash.gw.url}/v0/management/usage").status_code == 401
    assert httpx.post(f"{dash.gw.url}/v0/management/dashboard").status_code == 401


# --- in Chromium -------------------------------------------------------------------------------------
CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (apt-get install chromium, or set QUOTIO_CHROMIUM)"
)
# Recorded by the page itself from its first script on: policy violations and uncaught errors.
WATCH = """
window.__problems = [];
document.addEventListener('securitypolicyviolation', (e) => window.__problems.push('csp ' + e.violatedDirective));
window.addEventListener('error', (e) => window.__problems.push('error ' + e.message));
"""


@pytest.fixture
def browser(tmp_path) -> Iterator[Browser]:
    with Browser(tmp_path, CHROMIUM) as b:
        yield b


def _open(browser: Browser, url: str):
    page = browser.page()
    page.send("Page.enable")
    page.send("Page.addScriptToEvaluateOnNewDocument", source=WATCH)
    page.navigate(url)
    return page


_SHOWN = "getComputedStyle(document.getElementById('{}')).display !== 'none'"


def _accounts(page) -> dict[str, str]:
    return page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#accounts .account')]"
        ".map((a) => [a.dataset.id, a.innerText]))"
    )


def _chart_sums(page, chart: str) -> dict[str, int]:
    return page.evaluate(
        f"Object.fromEntries(Chart.getChart('{chart}').data.datasets"
        ".map((d) => [d.label, d.data.reduce((a, b) => a + b, 0)]))"
    )


def _group_by(page, field: str) -> None:
    page.evaluate(f"{{ const g = document.getElementById('group'); g.value = '{field}'; g.dispatchEvent(new Event('change')); }}")


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


@needs_chromium
def test_dashboard_in_chromium(dash: Dash, browser: Browser, tmp_path):
    base = f"{dash.gw.url}/v0/management/dashboard"
    page = _open(browser, f"{base}?key={MGMT_KEY}")
    page.wait_for("document.querySelectorAll('#accounts .account').length === 6")

    assert page.evaluate(_SHOWN.format("main")) is True
    assert page.evaluate(_SHOWN.format("keyform")) is False
    # The key left the address bar for the session's storage.
    assert page.evaluate("location.href") == base
    assert page.evaluate("sessionStorage.getItem('quotio.management-key')") == MGMT_KEY

    accounts = _accounts(page)
    a = accounts["claude-a@example.com.json"]
    assert "a@example.com" in a and "ready" in a
    assert re.search(r"five_hour\s+58% left\s+resets in 2h 5\dm", a)
    assert re.search(r"seven_day\s+90% left\s+resets in 3d 23h", a)
    assert "4 requests · 36 tokens" in a
    b = accounts["claude-b@example.com.json"]
    assert "cooling" in b and re.search(r"five_hour\s+0% left\s+resets in 1h 5\dm", b)
    assert "needs-login" in accounts["claude-c@example.com.json"]
    assert re.search(r"gemini-2\.5-pro\s+65% left\s+resets in 19h 5\dm", accounts["gemini-g@example.com-fake-project-123.json"])
    assert "quota unsupported: API keys have no subscription quota" in accounts["claude-api-key[0]"]
    bar = page.evaluate("document.querySelector('[data-id=\"claude-a@example.com.json\"] .bar span').style.width")
    assert bar == "58%"

    # The charts hold the requests and tokens made above, per provider, then per model.
    assert _chart_sums(page, "chart-requests") == {"claude": 4, "codex": 3}
    assert _chart_sums(page, "chart-tokens") == {"claude": 36, "codex": 14}
    totals = page.evaluate("document.getElementById('totals').innerText")
    assert re.search(r"Requests\s+7\b", totals) and "14.3% error rate" in totals
    assert re.search(r"Cancelled\s+0\s+hung up by the client", totals)
    assert re.search(r"Latency p50\s+\d+ ms\s+p95 \d+ ms", totals)
    providers = page.evaluate("document.getElementById('by-provider').innerText")
    # Provider, requests, errors, error rate, cancelled, tokens in, tokens out.
    assert re.search(r"codex\s+3\s+1\s+33\.3%\s+0\s+6\s+8", providers)
    pool = page.evaluate("document.getElementById('pool').innerText")
    assert re.search(r"b@example\.com\s+cooling\s+quota window exhausted \(five_hour\)\s+ends in 1h 5\dm", pool)
    assert "log in again: quotio login claude" in pool

    # Countdowns tick between refreshes: every [data-until] element, counted
    # from when the answer came (a probe outside the redrawn parts shows it).
    assert page.evaluate("document.querySelectorAll('#accounts [data-until], #pool [data-until]').length") >= 4
    page.evaluate(
        "{ const probe = document.createElement('span'); probe.id = 'probe'; probe.dataset.prefix = 'in ';"
        "probe.dataset.until = String(Date.now() + 5000); document.body.append(probe); }"
    )
    page.wait_for("/^in [1-4]s$/.test(document.getElementById('probe').textContent)", timeout=3)
    page.evaluate("document.getElementById('probe').remove()")

    _group_by(page, "model")
    page.wait_for(f"Chart.getChart('chart-requests').data.datasets.some((d) => d.label === '{CLAUDE_MODEL}')")
    assert _chart_sums(page, "chart-requests") == {CLAUDE_MODEL: 4, "gpt-4o": 3}
    _group_by(page, "provider")
    page.wait_for("Chart.getChart('chart-requests').data.datasets.some((d) => d.label === 'claude')")

    assert page.evaluate("window.__problems") == []
    png = page.screenshot()
    width, height = _png_size(png)
    assert width == 1280 and height > 900
    (tmp_path / "dashboard.png").write_bytes(png)
    if target := os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(tmp_path / "dashboard.png", target)


@needs_chromium
def test_a_refused_key_is_asked_for_again_and_text_stays_text(dash: Dash, browser: Browser):
    # Markup in an account's e-mail must reach the page as text.
    hostile = '<img src=x onerror="window.__owned=1">@example.com'
    dash.gw.write_auth("claude-hostile.json", claude_file("sk-ant-oat01-dash-hostile", hostile))
    try:
        deadline = time.monotonic() + 10
        while not any(
            c["email"] == hostile for c in httpx.get(f"{dash.gw.url}/v0/management/auth", headers=MGMT).json()["auth_files"]
        ):
            assert time.monotonic() < deadline, "the gateway did not pick up the auth file"
            time.sleep(0.1)
        page = _open(browser, f"{dash.gw.url}/v0/management/dashboard?key=wrong")
        page.wait_for(_SHOWN.format("keyform"))
        assert page.evaluate("document.getElementById('keyerror').textContent") == "invalid management key"
        assert page.evaluate(_SHOWN.format("main")) is False
        page.evaluate(
            f"document.getElementById('keyinput').value = '{MGMT_KEY}';"
            "document.getElementById('keyform').requestSubmit()"
        )
        page.wait_for("document.querySelectorAll('#accounts .account').length === 7")
        assert page.evaluate(_SHOWN.format("keyform")) is False
        assert page.evaluate(_SHOWN.format("main")) is True
        assert hostile in _accounts(page)["claude-hostile.json"]
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert page.evaluate("window.__owned") is None
        # A reload keeps the session's key: no address parameter, no question.
        page.send("Page.reload")
        page.wait_event("Page.loadEventFired")
        page.wait_for("document.querySelectorAll('#accounts .account').length === 7")
        assert page.evaluate("window.__problems") == []
    finally:
        (dash.gw.auth_dir / "claude-hostile.json").unlink()


def test_saved_flows_hold_no_management_key(dash: Dash):
    # The page's ?key= and the API calls' header are masked on the stored flows.
    httpx.get(f"{dash.gw.url}/v0/management/dashboard", params={"key": MGMT_KEY}).raise_for_status()
    httpx.get(f"{dash.gw.url}/v0/management/pool", headers=MGMT).raise_for_status()
    dash.gw.stop()
    blob = (dash.gw.root / "flows.mitm").read_bytes()
    assert b"/v0/management/dashboard?key=" in blob
    assert MGMT_KEY.encode() not in blob
