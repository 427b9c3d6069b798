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
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
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

# Printable, no separators; the longest a file system takes.
_MAX_NAME = 255
_BAD_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def auth_file_name(name: str) -> str:
    """`name` if it can only mean a file directly inside the auth dir; else ValueError saying why.

    Every route that takes a file name from a client goes through here: no
    separators, no `..`, no hidden files, no control characters (a newline
    would forge log lines), a `.json` name of sensible length.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("no file name given")
    if len(name) > _MAX_NAME:
        raise ValueError(f"file name longer than {_MAX_NAME} characters")
    if _BAD_NAME.search(name):
        raise ValueError("file name holds a path separator or a control character")
    if name.startswith(".") or ".." in name:
        raise ValueError("file name starts with a dot or holds ..")
    if not name.endswith(".json") or name == ".json":
        raise ValueError("file name must end in .json")
    return name


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
        self._links_warned: set[str] = set()
        self._open_warned: set[Path] = set()

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
        self._check_private(self.dir, os.stat(self.dir).st_mode)
        for e in entries:
            if e.name.endswith(".json") and not e.name.startswith(".") and e.is_file() and self._inside(e):
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue  # deleted since the listing: treat it as gone
                self._check_private(Path(e.path), st.st_mode)
                out[e.name] = (st.st_mtime_ns, st.st_size)
        return out

    def _check_private(self, path: Path, mode: int) -> None:
        """Warn once per path that others on the machine can read tokens (nothing is changed)."""
        if mode & 0o077 and path not in self._open_warned:
            self._open_warned.add(path)
            log.warning("%s is readable by other users (mode %s); chmod go-rwx it", path, oct(mode & 0o777))

    def _inside(self, entry: os.DirEntry) -> bool:
        """A file, or a link to one, within the auth dir: a link out of it is not followed."""
        if not entry.is_symlink():
            return True
        target = Path(os.path.realpath(entry.path))
        if target.parent == Path(os.path.realpath(self.dir)):
            return True
        if entry.name not in self._links_warned:
            self._links_warned.add(entry.name)
            self._warn(f"auth file {entry.path} skipped: it links out of the auth dir")
        return False

    def path_for(self, name: str) -> Path:
        """The path of a client-named auth file (ValueError for a name that could leave the dir)."""
        return self.dir / auth_file_name(name)

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
        """Write (or replace) an auth file atomically and load it now.

        A link in its place is replaced, never written through.
        """
        path = self.path_for(name)
        write_json_atomic(path, data)
        self.scan()
        return path

    def remove(self, name: str) -> Path:
        """Move an auth file aside into `.removed/` (recoverable), return its new path.

        A link is moved itself, never its target.
        """
        src = self.path_for(name)
        if not (src.is_file() or src.is_symlink()):
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
