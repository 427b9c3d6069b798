"""The auth dir: read CLIProxyAPI's JSON files, notice changes, write safely.

Files are never rewritten or deleted because they failed to parse. Writes go
to a temp file in the same directory, are fsynced and renamed over the
target with mode 0600, so a crash leaves either the old file or the new one.
"Deleting" moves the file into ``.removed/`` where it can be recovered.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config
from .credentials import Credential, CredentialError, credential_from_auth_file

__all__ = ["AuthStore", "ScanResult", "write_json_atomic"]

log = logging.getLogger(__name__)

REMOVED_DIR = ".removed"


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Replace `path` with `data` as JSON, atomically and readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True)
class ScanResult:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


Signature = tuple[int, int]  # (mtime_ns, size)


class AuthStore:
    """Credentials from the auth dir, kept in step with it by :meth:`scan`.

    `scan` does blocking file I/O; the addon runs it in a worker thread.
    """

    def __init__(self, config: Config, on_warning: Callable[[str], None] | None = None):
        self.config = config
        self.dir = config.auth_dir
        self._warn = on_warning or log.warning
        self._lock = threading.Lock()
        # One scan at a time: the watcher and a management delete may overlap.
        self._scan_lock = threading.Lock()
        self._seen: dict[str, Signature] = {}
        self._creds: dict[str, Credential] = {}

    @property
    def credentials(self) -> list[Credential]:
        with self._lock:
            return [self._creds[k] for k in sorted(self._creds)]

    def get(self, cred_id: str) -> Credential | None:
        with self._lock:
            return self._creds.get(cred_id)

    def _listing(self) -> dict[str, Signature]:
        try:
            entries = list(os.scandir(self.dir))
        except FileNotFoundError:
            return {}
        out = {}
        for e in entries:
            if e.name.endswith(".json") and not e.name.startswith(".") and e.is_file():
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue  # deleted since the listing: treat it as gone
                out[e.name] = (st.st_mtime_ns, st.st_size)
        return out

    def _load(self, name: str) -> Credential | None:
        try:
            text = (self.dir / name).read_text(encoding="utf-8")
            return credential_from_auth_file(name, json.loads(text), self.config)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, CredentialError) as e:
            self._warn(f"auth file {self.dir / name} skipped: {e}")
            return None

    def scan(self) -> ScanResult:
        with self._scan_lock:
            return self._scan()

    def _scan(self) -> ScanResult:
        """Bring the credentials in step with the directory.

        Files are read without the lock; the lock only guards the swap, so a
        reader on the event loop never waits for disk I/O.
        """
        listing = self._listing()
        added, changed, loaded = [], [], {}
        for name, sig in listing.items():
            if self._seen.get(name) == sig:
                continue
            (changed if name in self._seen else added).append(name)
            loaded[name] = self._load(name)
        removed = [n for n in self._seen if n not in listing]
        with self._lock:
            for name in removed:
                del self._seen[name]
                self._creds.pop(name, None)
            for name, cred in loaded.items():
                self._seen[name] = listing[name]
                if cred is None:
                    self._creds.pop(name, None)
                else:
                    self._creds[name] = cred
        return ScanResult(tuple(sorted(added)), tuple(sorted(changed)), tuple(sorted(removed)))

    def write(self, name: str, data: Mapping[str, Any]) -> Path:
        """Write (or replace) an auth file atomically and load it now."""
        if "/" in name or name.startswith(".") or not name.endswith(".json"):
            raise ValueError(f"invalid auth file name {name!r}")
        path = self.dir / name
        write_json_atomic(path, data)
        self.scan()
        return path

    def remove(self, name: str) -> Path:
        """Move an auth file aside into `.removed/` (recoverable), return its new path."""
        src = self.dir / name
        if not src.is_file():
            raise FileNotFoundError(name)
        dest_dir = self.dir / REMOVED_DIR
        dest_dir.mkdir(mode=0o700, exist_ok=True)
        dest = dest_dir / f"{name}.{time.strftime('%Y%m%dT%H%M%S')}"
        n = 0
        while dest.exists():
            n += 1
            dest = dest.with_name(f"{dest.name}.{n}")
        os.replace(src, dest)
        self.scan()
        return dest
