"""This installation's own secret, for ids that must not be guessable from a key.

A record names the client key that made a request by a short id. An
unsalted hash of the key would let anyone holding the records check guesses
of a key against it offline; an HMAC keyed with a random secret kept in the
config dir (mode 0600) does not. The secret is made on first use; if the
config dir cannot be written, a secret for this process only is used (and
ids then change on restart), with one warning.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

__all__ = ["SECRET_FILE", "install_secret", "key_id"]

log = logging.getLogger(__name__)

SECRET_FILE = "install-secret"
_BYTES = 32


@functools.lru_cache(maxsize=16)
def install_secret(config_dir: Path) -> bytes:
    path = Path(config_dir) / SECRET_FILE
    try:
        data = path.read_bytes()
        if len(data) >= _BYTES:
            return data
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("cannot read %s (%s); key ids will change on restart", path, e)
        return secrets.token_bytes(_BYTES)
    data = secrets.token_bytes(_BYTES)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except FileExistsError:
        return path.read_bytes()  # another process made it first
    except OSError as e:
        log.warning("cannot write %s (%s); key ids will change on restart", path, e)
    return data


@functools.lru_cache(maxsize=256)
def key_id(secret: str, salt: bytes = b"") -> str:
    """A stable, non-reversible id for a key, safe to log and store.

    With this installation's `salt` (quotio_core/install.py) it is an HMAC,
    so a leaked record cannot be used to test guesses of a key.
    """
    if salt:
        return hmac.new(salt, secret.encode(), hashlib.sha256).hexdigest()[:12]
    return hashlib.sha256(secret.encode()).hexdigest()[:12]
