"""The `quotio` command line (click), run in-process."""

from __future__ import annotations

import json

from click.testing import CliRunner

from quotio_core.cli import main


def test_help_lists_serve_and_auth_list():
    out = CliRunner().invoke(main, ["--help"]).output
    assert "serve" in out and "auth" in out
    auth = CliRunner().invoke(main, ["auth", "--help"]).output
    assert "list" in auth
    serve = CliRunner().invoke(main, ["serve", "--help"]).output
    for flag in ("--host", "--port", "--config", "--web"):
        assert flag in serve


def _env(tmp_path):
    return {"QUOTIO_CONFIG_DIR": str(tmp_path), "QUOTIO_AUTH_DIR": str(tmp_path / "auth"), "QUOTIO_CONFIG": ""}


def test_auth_list_shows_accounts_without_secrets(tmp_path):
    auth = tmp_path / "auth"
    auth.mkdir()
    (auth / "claude-me@example.com.json").write_text(
        json.dumps({"type": "claude", "email": "me@example.com", "access_token": "sk-ant-oat01-secret-xyz",
                    "expired": "2099-01-01T00:00:00Z"})
    )
    (auth / "broken.json").write_text("{not json")
    (tmp_path / "config.yaml").write_text("gemini-api-key:\n  - api-key: AIza-secret-key\n")
    result = CliRunner().invoke(main, ["auth", "list"], env=_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert "claude-me@example.com.json" in result.output
    assert "me@example.com" in result.output and "ready" in result.output
    assert "gemini-api-key[0]" in result.output
    assert "broken.json skipped" in result.output  # the warning names the file
    assert "secret" not in result.output.replace("broken", "")
    as_json = CliRunner().invoke(main, ["auth", "list", "--json"], env=_env(tmp_path))
    rows = json.loads(as_json.stdout)
    assert {r["id"] for r in rows} == {"claude-me@example.com.json", "gemini-api-key[0]"}
    assert "sk-ant-oat01-secret-xyz" not in as_json.output and "AIza-secret-key" not in as_json.output


def test_bad_config_is_one_clear_line(tmp_path):
    (tmp_path / "config.yaml").write_text("routing:\n  strategy: random\n")
    result = CliRunner().invoke(main, ["auth", "list"], env=_env(tmp_path))
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "config.yaml" in lines[0] and "routing.strategy" in lines[0]
