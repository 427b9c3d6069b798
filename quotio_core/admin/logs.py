"""Structured logs: one JSON object per line on stderr, secrets redacted.

Every message from the `quotio` and `quotio_core` loggers passes through
`redact` with the secrets the gateway knows at that moment (credential
tokens, client keys, the management key) plus the credential-shaped patterns
of the records module, so a token quoted in an upstream error never reaches
a log line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import IO

from ..records import redact

__all__ = ["JsonFormatter", "RedactFilter", "install"]

LOGGERS = ("quotio", "quotio_core")


class RedactFilter(logging.Filter):
    def __init__(self, secrets: Callable[[], Iterable[str]]):
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage(), self._secrets())
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self._secrets())
            record.exc_info = None
        record.msg, record.args = message, ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def install(secrets: Callable[[], Iterable[str]], debug: bool = False, stream: IO[str] | None = None) -> logging.Handler:
    """Send quotio's loggers to one JSON handler (replacing a previous one)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactFilter(secrets))
    handler.set_name("quotio-json")
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "quotio-json"]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
        # Not also through mitmproxy's own (unredacted, plain text) log output.
        logger.propagate = False
    return handler
