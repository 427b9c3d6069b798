"""Peer gateways for `scripts/bench.py`: claude-code-router and LiteLLM on the translated path.

Each peer takes an Anthropic Messages client (`POST /v1/messages`, `x-api-key`)
and serves it from an OpenAI Chat Completions upstream (the fake). Both are
installed and run entirely under a scratch directory:

* claude-code-router: `npm install --prefix tmp/ccr @musistudio/claude-code-router@V`
  (V = $BENCH_CCR_VERSION, default latest), a JSON config in
  `$HOME/.claude-code-router/config.json` with HOME = tmp/ccr-home, started as
  `node <pkg>/dist/cli.js start` (that command runs the server in the
  foreground, so the pid is the server's). Only the 1.x/2.x line is supported:
  3.x is a different product (SQLite config behind a web UI, Node >= 22), so
  when "latest" cannot be installed or is 3.x, 2.0.0 is used instead.
* LiteLLM: `pip install 'litellm[proxy]'` (==$BENCH_LITELLM_VERSION if set) into
  tmp/litellm-venv, then `litellm --config tmp/litellm/config.yaml --host
  127.0.0.1 --port P --num_workers 1`. LiteLLM sends /v1/messages for `openai/`
  models to the Responses API by default; `use_chat_completions_url_for_anthropic_messages`
  makes it use /v1/chat/completions like the other gateways.

`python scripts/bench_peers.py` is a self-test: fake upstream, each peer, one
non-stream and one stream request through it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

# What the Anthropic client puts in its body (the model bench.py uses), and
# the name the peers send upstream.
CLIENT_MODEL = "claude-sonnet-4-20250514"
UPSTREAM_MODEL = "gpt-bench"
UPSTREAM_API_KEY = "sk-bench-upstream"

CCR_PACKAGE = "@musistudio/claude-code-router"
# Newest release whose server is configured by ~/.claude-code-router/config.json.
CCR_FALLBACK_VERSION = "2.0.0"
CCR_API_KEY = "bench-ccr-key-0123456789"
LITELLM_MASTER_KEY = "sk-bench-litellm-0123456789"

NPM_TIMEOUT = 180.0
PIP_TIMEOUT = 300.0
START_TIMEOUT = 60.0

Log = Callable[[str], None]


@dataclass
class Peer:
    name: str  # "claude-code-router" or "litellm"
    url: str  # base URL the Anthropic client posts /v1/messages to
    pid: int  # the server process itself, for CPU sampling
    headers: dict[str, str]  # extra/override headers the client must send
    model: str  # the model name the client must put in its body
    stop: Callable[[], None]


class SetupError(Exception):
    """A peer cannot be set up; the message is the one-line reason."""


# ---------------------------------------------------------------------------
# helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 1) -> str:
    """The last n non-blank lines of a log file, joined, for a one-line reason."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[:300]


def _install_error(path: Path) -> str:
    """The telling line of a failed install's log: pip's last ERROR line, npm's first error line."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    pip_errors = [ln for ln in lines if ln.startswith("ERROR:")]
    npm_errors = [ln for ln in lines if ln.startswith("npm error") and not ln.startswith("npm error code")]
    found = pip_errors[-1:] or npm_errors[:1] or lines[-1:]
    return found[0][:300] if found else ""


def _stop_group(proc: subprocess.Popen) -> None:
    """Terminate the process group `proc` leads, wait, then kill it if needed."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def _run(what: str, cmd: list[str], log_path: Path, timeout: float) -> None:
    """Run an install step with its output in `log_path`; SetupError on failure or timeout."""
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            raise SetupError(f"{what} timed out after {timeout:.0f}s (log: {log_path})") from None
    if rc != 0:
        raise SetupError(f"{what} exited with {rc}: {_install_error(log_path)} (log: {log_path})")


def _server_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    tmpdir = home / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), TMPDIR=str(tmpdir), NO_PROXY="127.0.0.1,localhost")
    return env


def _spawn(cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("wb") as out:
        # Its own session/process group, so stop() reaches anything it spawns.
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def _wait_listening(proc: subprocess.Popen, port: int, log_path: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(f"exited with {proc.returncode}: {_tail(log_path)} (log: {log_path})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SetupError(f"did not listen on port {port} within {timeout:.0f}s (log: {log_path})")


def messages_request(peer: Peer, stream: bool, timeout: float = 30.0) -> tuple[bool, str]:
    """One Anthropic Messages request through `peer`: (ok, short description)."""
    body = {
        "model": peer.model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": stream,
    }
    headers = {"anthropic-version": "2023-06-01", **peer.headers}
    try:
        r = httpx.post(peer.url + "/v1/messages", json=body, headers=headers, timeout=timeout, trust_env=False)
    except httpx.HTTPError as e:
        return False, f"{type(e).__name__}: {e}"
    if r.status_code != 200:
        return False, f"HTTP {r.status_code}: {r.text[:200]!r}"
    if stream:
        ok = "message_stop" in r.text
        return ok, f"200, {r.text.count('content_block_delta')} deltas, message_stop {'seen' if ok else 'missing'}"
    try:
        data = r.json()
    except ValueError:
        return False, f"200 but not JSON: {r.text[:200]!r}"
    text = "".join(b.get("text", "") for b in data.get("content", []) if isinstance(b, dict))
    return data.get("type") == "message", f"200, type={data.get('type')!r}, text={text!r}"


def _start_peer(
    name: str, cmd: list[str], cwd: Path, env: dict[str, str], port: int, headers: dict[str, str], log_path: Path
) -> Peer:
    """Spawn the server, wait for its port, check one request; SetupError (process stopped) otherwise."""
    proc = _spawn(cmd, cwd, env, log_path)
    peer = Peer(name, f"http://127.0.0.1:{port}", proc.pid, headers, CLIENT_MODEL, lambda: _stop_group(proc))
    try:
        _wait_listening(proc, port, log_path)
        ok, detail = messages_request(peer, stream=False)
        if not ok:
            raise SetupError(f"sanity request failed: {detail} (log: {log_path})")
    except BaseException:
        peer.stop()
        raise
    return peer


def _guarded(
    name: str, start: Callable[[Path, str, Log], Peer], tmp: Path, openai_base_url: str, log: Log
) -> Peer | None:
    """Run a peer's set-up; on any failure log one line saying why and return None."""
    try:
        peer = start(tmp, openai_base_url, log)
    except SetupError as e:
        log(f"{name}: skipped, {e}")
        return None
    except Exception as e:  # noqa: BLE001 - a peer that cannot be set up must not take the benchmark down
        log(f"{name}: skipped, {type(e).__name__}: {e}")
        return None
    log(f"{name}: up on {peer.url} (pid {peer.pid})")
    return peer


# ---------------------------------------------------------------------------
# claude-code-router


def _install_ccr(prefix: Path, version: str, log: Log) -> Path:
    """npm-install one version; the path of its CLI entry (which also runs the server)."""
    shutil.rmtree(prefix, ignore_errors=True)
    prefix.mkdir(parents=True)
    log(f"claude-code-router: npm install {CCR_PACKAGE}@{version} ...")
    _run(
        "npm install",
        ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-update-notifier",
         f"{CCR_PACKAGE}@{version}"],
        prefix.parent / "ccr-npm.log", NPM_TIMEOUT,
    )  # fmt: skip
    pkg_dir = prefix / "node_modules" / CCR_PACKAGE
    pkg = json.loads((pkg_dir / "package.json").read_text())
    installed = str(pkg.get("version", "?"))
    bin_field = pkg.get("bin")
    entry = bin_field.get("ccr") if isinstance(bin_field, dict) else bin_field
    if not installed.split(".")[0].isdigit() or int(installed.split(".")[0]) >= 3 or not entry:
        raise SetupError(f"version {installed} is not the JSON-configured 1.x/2.x line")
    log(f"claude-code-router: installed {installed}")
    return pkg_dir / entry


def start_ccr(tmp: Path, openai_base_url: str, log: Log) -> Peer | None:
    """claude-code-router routing everything to the fake OpenAI upstream; None if it cannot be set up."""
    return _guarded("claude-code-router", _start_ccr, tmp, openai_base_url, log)


def _start_ccr(tmp: Path, openai_base_url: str, log: Log) -> Peer:
    if not (shutil.which("node") and shutil.which("npm")):
        raise SetupError("node/npm not found")
    requested = os.environ.get("BENCH_CCR_VERSION") or "latest"
    versions = [requested, CCR_FALLBACK_VERSION] if requested == "latest" else [requested]
    cli: Path | None = None
    for version in versions:
        try:
            cli = _install_ccr(tmp / "ccr", version, log)
            break
        except (SetupError, OSError, ValueError) as e:
            reason = f"{CCR_PACKAGE}@{version}: {e}"
            if version == versions[-1]:
                raise SetupError(reason) from None
            log(f"claude-code-router: {reason}; trying {versions[-1]}")
    assert cli is not None

    home = tmp / "ccr-home"
    conf_dir = home / ".claude-code-router"
    conf_dir.mkdir(parents=True, exist_ok=True)
    # A stale pid file would make `start` report "already running" and exit.
    (conf_dir / ".claude-code-router.pid").unlink(missing_ok=True)
    port = _free_port()
    config = {
        "HOST": "127.0.0.1",
        "PORT": port,
        "APIKEY": CCR_API_KEY,
        "LOG": False,
        "NON_INTERACTIVE_MODE": True,
        "API_TIMEOUT_MS": 600000,
        "Providers": [{
            "name": "bench",
            "api_base_url": openai_base_url.rstrip("/") + "/chat/completions",
            "api_key": UPSTREAM_API_KEY,
            "models": [UPSTREAM_MODEL],
        }],
        "Router": {"default": f"bench,{UPSTREAM_MODEL}"},
    }  # fmt: skip
    (conf_dir / "config.json").write_text(json.dumps(config, indent=2))
    return _start_peer(
        "claude-code-router", ["node", str(cli), "start"], tmp, _server_env(home), port,
        {"x-api-key": CCR_API_KEY}, tmp / "ccr.log",
    )  # fmt: skip


# ---------------------------------------------------------------------------
# LiteLLM


def _base_python() -> str:
    venv_python = ROOT / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def start_litellm(tmp: Path, openai_base_url: str, log: Log) -> Peer | None:
    """LiteLLM proxy serving /v1/messages from the fake OpenAI upstream; None if it cannot be set up."""
    return _guarded("litellm", _start_litellm, tmp, openai_base_url, log)


def _start_litellm(tmp: Path, openai_base_url: str, log: Log) -> Peer:
    venv = tmp / "litellm-venv"
    python = str(venv / "bin" / "python")
    work = tmp / "litellm"
    work.mkdir(parents=True, exist_ok=True)
    version = os.environ.get("BENCH_LITELLM_VERSION")
    spec = f"litellm[proxy]=={version}" if version else "litellm[proxy]"
    pip_log = tmp / "litellm-pip.log"
    log(f"litellm: creating {venv} and pip install {spec} ...")
    _run("venv", [_base_python(), "-m", "venv", str(venv)], pip_log, 60)
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "-q", spec]
    _run("pip install", pip, pip_log, PIP_TIMEOUT)
    installed = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    log(f"litellm: installed {installed}")

    env = _server_env(work / "home")
    # The cost map is otherwise fetched from GitHub at start-up (retries when offline).
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    exe = str(venv / "bin" / "litellm")
    help_text = subprocess.run(
        [exe, "--help"], check=False, capture_output=True, text=True, timeout=60, env=env, cwd=work
    ).stdout

    # YAML is a superset of JSON, so the config is written as JSON.
    config = {
        "model_list": [{
            "model_name": CLIENT_MODEL,
            "litellm_params": {
                "model": f"openai/{UPSTREAM_MODEL}",
                "api_base": openai_base_url.rstrip("/"),
                "api_key": UPSTREAM_API_KEY,
            },
        }],
        "general_settings": {"master_key": LITELLM_MASTER_KEY},
        # Without it, /v1/messages for openai/ models goes to /v1/responses.
        "litellm_settings": {"use_chat_completions_url_for_anthropic_messages": True},
    }  # fmt: skip
    config_path = work / "config.yaml"
    config_path.write_text(json.dumps(config, indent=2))
    port = _free_port()
    cmd = [exe, "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port)]
    if "--num_workers" in help_text:
        cmd += ["--num_workers", "1"]
    return _start_peer("litellm", cmd, work, env, port, {"x-api-key": LITELLM_MASTER_KEY}, tmp / "litellm.log")


# ---------------------------------------------------------------------------
# self-test


def main() -> int:
    parser = argparse.ArgumentParser(description="Self-test: set up each peer and send two requests through it.")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (its path is printed)")
    args = parser.parse_args()

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    log(f"scratch directory {tmp}")
    failed = 0
    from bench import Proc, start_fake, stop_proc  # bench imports this module: import it late

    fakes: list[Proc] = []
    fake_url = start_fake(tmp, "Hello from the fake", fakes).url
    try:
        log(f"fake OpenAI upstream at {fake_url}")
        for start in (start_ccr, start_litellm):
            t0 = time.monotonic()
            peer = start(tmp, fake_url + "/v1", log)
            if peer is None:
                failed += 1
                continue
            try:
                log(f"{peer.name}: set up in {time.monotonic() - t0:.1f}s")
                for stream in (False, True):
                    ok, detail = messages_request(peer, stream)
                    failed += not ok
                    log(f"{peer.name}: {'stream' if stream else 'non-stream'} {'OK' if ok else 'FAIL'}: {detail}")
            finally:
                peer.stop()
                log(f"{peer.name}: stopped")
    finally:
        for fake in fakes:
            stop_proc(fake.proc)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log("all peers OK" if not failed else f"{failed} failure(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
