"""Starts the real `mitmdump -s addons/quotio.py` for end-to-end tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "addons" / "quotio.py"
MITMDUMP = Path(sys.executable).parent / "mitmdump"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class GatewayProcess:
    root: Path
    port: int
    proc: subprocess.Popen
    log_path: Path
    auth_dir: Path
    config_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def write_auth(self, name: str, data: Any) -> Path:
        path = self.auth_dir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(data if isinstance(data, str) else json.dumps(data))
        os.replace(tmp, path)
        return path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_gateway(
    root: Path,
    config: dict[str, Any],
    *,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    auth_files: dict[str, Any] | None = None,
    confdir: Path | None = None,
    port: int | None = None,
    wait: bool = True,
) -> GatewayProcess:
    root.mkdir(parents=True, exist_ok=True)
    auth_dir = root / "auth"
    auth_dir.mkdir(exist_ok=True)
    for name, data in (auth_files or {}).items():
        (auth_dir / name).write_text(data if isinstance(data, str) else json.dumps(data))
    config_path = root / "config.yaml"
    # Background quota polling would add calls to the fakes that tests count;
    # the quota tests turn it on themselves.
    config = {"quota-refresh-seconds": 0, **config}
    config_path.write_text(yaml.safe_dump(config))
    port = port or free_port()
    full_env = {
        **os.environ,
        "HOME": str(root),
        "QUOTIO_CONFIG": str(config_path),
        "QUOTIO_CONFIG_DIR": str(root),
        "QUOTIO_AUTH_DIR": str(auth_dir),
        "QUOTIO_HOST": "127.0.0.1",
        "QUOTIO_PORT": str(port),
        **(env or {}),
    }
    cmd = [str(MITMDUMP), "-s", str(ADDON), "--set", "termlog_verbosity=warn", "--set", "flow_detail=0", "--set", "quotio_auth_scan_ms=200"]
    if confdir is not None:
        cmd += ["--set", f"confdir={confdir}"]
    args = args or []
    if "--mode" not in args:
        # The default mode's listener exists while mitmdump loads the script;
        # keep it off 8080 so parallel runs and busy machines cannot collide.
        cmd += ["--set", f"listen_port={free_port()}"]
    cmd += args
    log_path = root / "mitmdump.log"
    proc = subprocess.Popen(
        cmd, cwd=root, env=full_env, stdout=log_path.open("w"), stderr=subprocess.STDOUT
    )
    gw = GatewayProcess(root, port, proc, log_path, auth_dir, config_path)
    if wait:
        wait_ready(gw)
    return gw


def wait_ready(gw: GatewayProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gw.proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {gw.proc.returncode}:\n{gw.log()}")
        try:
            if httpx.get(f"{gw.url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    gw.stop()
    raise RuntimeError(f"gateway did not come up in {timeout}s:\n{gw.log()}")


def start_mitmweb(root: Path, config: dict[str, Any], confdir: Path | str, password: str) -> tuple[GatewayProcess, int]:
    """The gateway under mitmweb; returns it and the web UI's port (Bearer `password`)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "auth").mkdir(exist_ok=True)
    config_path = root / "config.yaml"
    config_path.write_text(yaml.safe_dump({"quota-refresh-seconds": 0, **config}))
    port, web_port = free_port(), free_port()
    env = {**os.environ, "HOME": str(root), "QUOTIO_CONFIG": str(config_path), "QUOTIO_CONFIG_DIR": str(root),
           "QUOTIO_AUTH_DIR": str(root / "auth"), "QUOTIO_HOST": "127.0.0.1", "QUOTIO_PORT": str(port)}
    log_path = root / "mitmweb.log"
    proc = subprocess.Popen(
        [str(MITMDUMP.parent / "mitmweb"), "-s", str(ADDON), "--no-web-open-browser", "--set", f"web_port={web_port}",
         "--set", f"web_password={password}", "--set", f"confdir={confdir}"],
        env=env, cwd=root, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )
    gw = GatewayProcess(root, port, proc, log_path, root / "auth", config_path)
    wait_ready(gw)
    return gw, web_port
