"""The dashboard page, `GET /v0/management/dashboard`: one HTML answer with everything inlined.

`static/dashboard.html` names its assets the ordinary way (`<script
src="dashboard.js">`, `<link rel="stylesheet" href="dashboard.css">`), so the
files can be edited and read as they are; when served, each is replaced by
the file's content. A `<script src>` could not carry the management key and
the page must work offline, so the browser fetches nothing but the JSON API
(with the key on every call).

Charts: Chart.js 4.6.1 (MIT; `static/chart.umd.min.js`, its licence in
`static/chart.js-LICENSE.md`), the UMD build from the npm package
`chart.js@4.6.1` as published (npm integrity
sha512-hJyniucsFmq//EvXYvJ6c6mahPoI3kaxdjVH8awTaJ/fDNWeSqqqArixMJWkWNN6fcYvPU3HneSANFNYtRi61g==).

A Content-Security-Policy meta tag allows exactly the inlined scripts and
styles (by SHA-256) and connections to the gateway itself, so a string that
slipped into the page as markup still could not run.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib import resources

__all__ = ["CHART_JS_VERSION", "page"]

CHART_JS_VERSION = "4.6.1"
CONTENT_TYPE = "text/html; charset=utf-8"

_SCRIPT = re.compile(r'<script src="(?P<name>[\w.-]+)"></script>')
_STYLE = re.compile(r'<link rel="stylesheet" href="(?P<name>[\w.-]+)">')
# The vendored file points at a source map the page does not ship.
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=\S+\s*$", re.MULTILINE)


def _asset(name: str) -> str:
    return (resources.files(__package__) / "static" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _inline(tag: str, text: str) -> str:
    # An end tag inside the text would end the element early.
    if re.search(rf"</{tag}", text, re.IGNORECASE):
        raise ValueError(f"an inlined {tag} contains </{tag}")
    return f"<{tag}>{text}</{tag}>"


@functools.cache
def page() -> bytes:
    """The page with its scripts and styles inlined (package files: built once)."""
    scripts: list[str] = []
    styles: list[str] = []

    def script(m: re.Match[str]) -> str:
        text = _SOURCE_MAP.sub("", _asset(m["name"]))
        scripts.append(text)
        return _inline("script", text)

    def style(m: re.Match[str]) -> str:
        text = _asset(m["name"])
        styles.append(text)
        return _inline("style", text)

    html = _STYLE.sub(style, _SCRIPT.sub(script, _asset("dashboard.html")))
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(map(_sha256, scripts)),
            "style-src " + " ".join(map(_sha256, styles)),
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    # First in <head>: a policy covers only what follows it.
    return html.replace("<head>", "<head>\n" + meta, 1).encode()
