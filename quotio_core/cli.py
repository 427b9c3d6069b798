"""`quotio`: start the gateway, look at credentials, usage and quotas. A thin layer over quotio_core."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from .pool.authstore import AuthStore
from .config import Config, ConfigError, load_config
from .pool.credentials import credentials_from_config
from .providers.login import LoginError
from .admin.usage_report import WINDOWS
from .admin.usage_tables import quota_tables, usage_tables

ADDON = Path(__file__).resolve().parent.parent / "addons" / "quotio.py"


def _config(config_path: str | None, **overrides):
    try:
        return load_config(overrides={"config_path": config_path, **overrides})
    except ConfigError as e:
        raise click.ClickException(str(e)) from e


@click.group()
def main() -> None:
    """quotio: one local endpoint for a pool of AI provider accounts."""


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--host", help="Listen address (default $QUOTIO_HOST or host: in config, 0.0.0.0).")
@click.option("--port", type=int, help="Listen port (default $QUOTIO_PORT or port: in config, 8317).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Config file.")
@click.option("--web", is_flag=True, help="Start mitmweb (inspect every request in a browser).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, config_path: str | None, web: bool) -> None:
    """Start the gateway (same as `make run`). Extra arguments go to mitmdump."""
    # Fails here, in one line, on a bad config.
    config = _config(config_path, host=host, port=port)
    args = ["-s", str(ADDON), "--mode", config.listen_mode, "--set", "connection_strategy=lazy"]
    for name, value in (("quotio_config", config_path), ("quotio_host", host), ("quotio_port", port)):
        if value:
            args += ["--set", f"{name}={value}"]
    args += ctx.args
    if web:
        from mitmproxy.tools.main import mitmweb as run
    else:
        from mitmproxy.tools.main import mitmdump as run
    run(args)


@main.group()
def auth() -> None:
    """Credentials in the auth dir and the config."""


@auth.command("list")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Config file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def auth_list(config_path: str | None, as_json: bool) -> None:
    """List every credential with its provider and status (never its secret)."""
    config = _config(config_path)
    warnings: list[str] = []
    store = AuthStore(config, on_warning=warnings.append)
    store.scan()
    creds = credentials_from_config(config) + store.credentials
    if as_json:
        click.echo(json.dumps([c.public() for c in creds], indent=2))
        return
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    if not creds:
        click.echo(f"no credentials in {config.auth_dir} or the config")
        return
    rows = [(c.provider, c.id, c.email or c.label, c.status, c.expires_at.isoformat() if c.expires_at else "-") for c in creds]
    widths = [max(len(r[i]) for r in rows + [("PROVIDER", "ID", "ACCOUNT", "STATUS", "EXPIRES")]) for i in range(5)]
    for row in [("PROVIDER", "ID", "ACCOUNT", "STATUS", "EXPIRES"), *rows]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _gateway_url(config: Config) -> str:
    host = config.host
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"  # a wildcard bind is reached on loopback
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{config.port}"


def _management_get(url: str, key: str, path: str, params: dict[str, str] | None = None):
    """GET a management route of the running gateway; any failure is one clear line."""
    import httpx

    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        # Management calls go straight to the gateway, never through a proxy from the environment.
        resp = httpx.get(f"{url}/v0/management{path}", params=params, headers=headers, timeout=60, trust_env=False)
    except httpx.ConnectError as e:
        raise click.ClickException(f"no gateway answers at {url}; is it running? (`quotio serve` starts it)") from e
    except httpx.HTTPError as e:
        raise click.ClickException(f"{url}: {type(e).__name__}") from e
    try:
        body = resp.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if resp.status_code == 401:
        raise click.ClickException(
            f"the gateway refused the management key ({error or 'HTTP 401'}); "
            "pass --key or set remote-management.secret-key in the config"
        )
    if resp.status_code == 403:
        raise click.ClickException(f"the gateway refuses management from here ({error or 'HTTP 403'})")
    if resp.status_code != 200 or not isinstance(body, dict):
        raise click.ClickException(f"{url}/v0/management{path}: HTTP {resp.status_code} {error or ''}".rstrip())
    return body


def _management_options(f):
    f = click.option("--json", "as_json", is_flag=True, help="The API's JSON instead of tables.")(f)
    f = click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Config file.")(f)
    f = click.option("--key", help="Management key (default: remote-management.secret-key in the config).")(f)
    return click.option("--url", help="The gateway (default: host and port from the config).")(f)


def _target(config_path: str | None, url: str | None, key: str | None) -> tuple[str, str]:
    config = _config(config_path)
    key = config.file.remote_management.secret_key if key is None else key
    return (url or _gateway_url(config)).rstrip("/"), key


@main.command()
@click.option("--window", default="24h", show_default=True, type=click.Choice(list(WINDOWS)), help="Time window.")
@_management_options
def usage(window: str, url: str | None, key: str | None, config_path: str | None, as_json: bool) -> None:
    """Requests, errors, tokens and latency of the running gateway, by provider, credential and model."""
    url, key = _target(config_path, url, key)
    body = _management_get(url, key, "/usage", {"window": window})
    click.echo(json.dumps(body, indent=2) if as_json else usage_tables(body))


@main.command()
@click.option("--refresh", is_flag=True, help="Fetch every account's quota now instead of the cached reports.")
@_management_options
def quotas(refresh: bool, url: str | None, key: str | None, config_path: str | None, as_json: bool) -> None:
    """What every account has left in each quota window, and which credentials are cooling or broken."""
    url, key = _target(config_path, url, key)
    body = _management_get(url, key, "/usage/quotas/all", {"refresh": "true"} if refresh else None)
    pool = _management_get(url, key, "/pool")
    click.echo(json.dumps({**body, "pool": pool}, indent=2) if as_json else quota_tables(body, pool))


@main.command()
@click.argument("provider")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Config file.")
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening a browser.")
@click.option("--port", type=int, help="Callback port (default: the provider's registered one).")
@click.option("--device", is_flag=True, help="Use the device-code flow where the provider has both.")
@click.option("--project-id", help="Gemini: the Code Assist project to use.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False), help="Vertex: service-account key JSON.")
@click.option("--location", help="Vertex: the region to call (default us-central1).")
def login(
    provider: str, config_path: str | None, no_browser: bool, port: int | None, device: bool,
    project_id: str | None, key_file: str | None, location: str | None,
) -> None:
    """Log in to PROVIDER and write its auth file (claude, codex, gemini, vertex,
    github-copilot, qwen, iflow, kiro)."""
    import asyncio

    config = _config(config_path)
    try:
        session = asyncio.run(
            _login(config, provider, no_browser, port, device, project_id, key_file, location)
        )
    except LoginError as e:
        raise click.ClickException(str(e)) from e
    if session.status != "ok":
        raise click.ClickException(f"login failed: {session.error}")
    who = f" as {session.email}" if session.email else ""
    click.echo(f"logged in{who}; wrote {config.auth_dir / session.file}")


async def _login(config, provider, no_browser, port, device, project_id, key_file, location):
    from .providers import canonical_provider, login_module
    from .providers.login.sessions import LoginSessions

    provider = canonical_provider(provider)
    if login_module(provider) is None:
        raise click.ClickException(f"unknown provider {provider!r}")
    store = AuthStore(config)
    oauth = config.file.oauth
    logins = LoginSessions(
        config, store, timeout=oauth.login_timeout_seconds, callback_ports=oauth.callback_ports
    )
    try:
        flows = logins.flows(provider)
        if "service-account" in flows:
            if not key_file:
                raise click.ClickException(f"{provider} logs in with a service-account key: pass --key-file")
            key = json.loads(Path(key_file).read_text(encoding="utf-8"))
            return await logins.import_service_account(
                provider, key, **({"location": location} if location else {})
            )
        options = {"project_id": project_id} if project_id else {}
        flow = "device" if device or "auth-code" not in flows else "auth-code"
        session = await logins.start(provider, flow, port=port, **options)
        if session.device is not None:
            click.echo(f"Open {session.auth_url}")
            click.echo(f"and enter the code {session.device.user_code}")
        else:
            click.echo(f"Open this URL to log in:\n{session.auth_url}")
            click.echo(f"Waiting for the browser to come back on {session.redirect_uri} ...")
        if not no_browser:
            import webbrowser

            webbrowser.open(session.auth_url)
        return await logins.wait(session)
    finally:
        await logins.aclose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
