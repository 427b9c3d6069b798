"""The rooms of the house keep their doors: this walks every import and checks the rules.

The rules (each package's __init__ says them too):
- formats/ imports nothing else from quotio_core, and finds its formats by plain imports.
- providers/ may import formats/ (and errors, install); providers/login/ may also
  import pool/ and config. Nothing in providers/ imports admin/ or the gateway.
- pool/ reaches providers only through the `quotio_core.providers` module (the list).
- nothing in quotio_core imports admin/ but admin/ itself and the CLI; admin/ sees the
  gateway only through admin/facade.py (never imports quotio_core.gateway).
- only addons/ (and the CLI's `serve`) import mitmproxy.
- addons/ import nothing from each other but addons.meta.
Imports under `if TYPE_CHECKING:` are for type checkers only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _modules(top: str) -> dict[str, Path]:
    out = {}
    for path in (ROOT / top).rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = {**_modules("quotio_core"), **_modules("addons")}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(module: str) -> list[str]:
    """Every module `module` imports at run time, absolute."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append(full if full in MODULES else base)
    return found


def _in(name: str, room: str) -> bool:
    return name == room or name.startswith(room + ".")


def _violations(rule) -> list[str]:
    return [f"{m} imports {i}" for m in sorted(MODULES) for i in imports(m) if rule(m, i)]


def test_formats_import_nothing_else_from_quotio_core():
    assert not _violations(
        lambda m, i: _in(m, "quotio_core.formats") and _in(i, "quotio_core") and not _in(i, "quotio_core.formats")
    )
    assert not _violations(lambda m, i: _in(m, "quotio_core.formats") and i == "importlib")


PROVIDERS_MAY = ("quotio_core.providers", "quotio_core.formats", "quotio_core.errors", "quotio_core.install")
LOGIN_MAY = (*PROVIDERS_MAY, "quotio_core.pool", "quotio_core.config")


def test_providers_import_only_formats_and_each_other():
    def wrong(m: str, i: str) -> bool:
        if not _in(m, "quotio_core.providers") or not _in(i, "quotio_core"):
            return False
        allowed = LOGIN_MAY if _in(m, "quotio_core.providers.login") else PROVIDERS_MAY
        return not any(_in(i, room) for room in allowed)

    assert not _violations(wrong)


def test_pool_knows_providers_only_through_the_list():
    assert not _violations(
        lambda m, i: _in(m, "quotio_core.pool") and _in(i, "quotio_core.providers") and i != "quotio_core.providers"
    )


def test_nothing_in_the_core_imports_admin():
    assert not _violations(
        lambda m, i: _in(m, "quotio_core") and not _in(m, "quotio_core.admin") and m != "quotio_core.cli"
        and _in(i, "quotio_core.admin")
    )


def test_admin_sees_the_gateway_only_through_its_facade():
    assert not _violations(lambda m, i: _in(m, "quotio_core.admin") and _in(i, "quotio_core.gateway"))


def test_only_the_adapters_import_mitmproxy():
    assert not _violations(lambda m, i: _in(m, "quotio_core") and m != "quotio_core.cli" and _in(i, "mitmproxy"))


def test_addons_share_only_meta():
    assert not _violations(
        lambda m, i: _in(m, "addons") and m != "addons.quotio" and _in(i, "addons") and i not in ("addons", "addons.meta")
    )


@pytest.mark.parametrize(
    ("module", "rule_test"),
    [
        ("quotio_core.formats.pipeline", test_formats_import_nothing_else_from_quotio_core),
        ("quotio_core.pool.routing", test_pool_knows_providers_only_through_the_list),
    ],
)
def test_the_walk_catches_a_broken_rule(monkeypatch, module, rule_test):
    """Each rule fails when a module breaks it (the check itself is checked)."""
    real = imports

    def with_a_bad_import(name: str) -> list[str]:
        extra = {"quotio_core.formats.pipeline": ["quotio_core.pool.credentials"],
                 "quotio_core.pool.routing": ["quotio_core.providers.claude.spec"]}
        return real(name) + extra.get(name, []) if name == module else real(name)

    monkeypatch.setitem(globals(), "imports", with_a_bad_import)
    with pytest.raises(AssertionError):
        rule_test()


def test_every_provider_folder_is_in_the_list():
    """A provider folder left out of PROVIDERS would be silently dead: say which."""
    import importlib

    from quotio_core import providers

    folders = [p.parent.name for p in (ROOT / "quotio_core" / "providers").glob("*/spec.py")]
    assert folders
    for name in folders:
        spec = importlib.import_module(f"quotio_core.providers.{name}.spec").PROVIDER
        assert spec in providers.PROVIDERS, f"providers/{name}/ is not in PROVIDERS"


def test_every_format_declares_what_the_registry_derives():
    from quotio_core.formats import FORMATS

    for fmt, package in FORMATS.items():
        assert package.ID == fmt
        for name in ("CLIENT", "IMAGES_INLINE", "ROUTES", "ENDPOINTS", "request", "response", "stream"):
            assert hasattr(package, name), f"formats/{fmt} lacks {name}"
        if package.CLIENT:
            assert package.ROUTES and hasattr(package, "errors") and hasattr(package, "usage"), fmt
    folders = {p.parent.name for p in (ROOT / "quotio_core" / "formats").glob("*/request.py")}
    assert folders == set(FORMATS), "a format package is not in FORMATS"
