import json
import os
import stat
from pathlib import Path

import pytest

from quotio_core.pool import authstore
from quotio_core.pool.authstore import AuthStore, ScanResult, write_json_atomic
from quotio_core.config import Config, load_config


def claude(token: str, email: str = "me@example.com", **extra) -> dict:
    return {"type": "claude", "email": email, "access_token": token, **extra}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(
        env={"QUOTIO_CONFIG_DIR": str(tmp_path / "cfg"), "QUOTIO_AUTH_DIR": str(tmp_path / "auth")}
    )


@pytest.fixture
def auth_dir(config: Config) -> Path:
    config.auth_dir.mkdir()
    return config.auth_dir


@pytest.fixture
def warnings() -> list[str]:
    return []


@pytest.fixture
def store(config: Config, warnings: list[str]) -> AuthStore:
    return AuthStore(config, on_warning=warnings.append)


def put(auth_dir: Path, name: str, data: object) -> Path:
    path = auth_dir / name
    path.write_text(json.dumps(data))
    return path


def bump(path: Path, data: object) -> None:
    """Rewrite with a different mtime so the change is visible whatever the clock granularity."""
    st = path.stat()
    path.write_text(json.dumps(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


# --- scan ----------------------------------------------------------------------------


def test_missing_dir_is_empty(store: AuthStore) -> None:
    assert store.scan() == ScanResult((), (), ())
    assert not store.scan()
    assert store.credentials == []


def test_scan_detects_add_change_remove(store: AuthStore, auth_dir: Path) -> None:
    a = put(auth_dir, "claude-a.json", claude("tok-a", "a@x"))
    put(auth_dir, "claude-b.json", claude("tok-b", "b@x"))

    first = store.scan()
    assert first == ScanResult(("claude-a.json", "claude-b.json"), (), ())
    assert bool(first)
    assert [c.id for c in store.credentials] == ["claude-a.json", "claude-b.json"]

    # Nothing changed: nothing reported.
    assert store.scan() == ScanResult((), (), ())

    bump(a, claude("tok-a2", "a@x"))
    (auth_dir / "claude-b.json").unlink()
    put(auth_dir, "codex-c.json", {"type": "codex", "access_token": "tok-c"})
    second = store.scan()
    assert second == ScanResult(("codex-c.json",), ("claude-a.json",), ("claude-b.json",))
    assert store.get("claude-a.json").secret == "tok-a2"
    assert store.get("claude-b.json") is None
    assert store.get("codex-c.json").provider == "codex"


def test_scan_ignores_non_json_hidden_and_dirs(store: AuthStore, auth_dir: Path) -> None:
    put(auth_dir, "claude-a.json", claude("tok-a"))
    (auth_dir / "notes.txt").write_text("hello")
    put(auth_dir, ".hidden.json", claude("tok-h"))
    (auth_dir / "dir.json").mkdir()
    (auth_dir / ".removed").mkdir()
    put(auth_dir / ".removed", "claude-old.json", claude("tok-old"))
    assert store.scan().added == ("claude-a.json",)
    assert [c.id for c in store.credentials] == ["claude-a.json"]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"no": "type"}',
        b'{"type": "nosuchprovider", "access_token": "x"}',
    ],
)
def test_corrupt_file_skipped_and_untouched(
    store: AuthStore, auth_dir: Path, warnings: list[str], content: bytes
) -> None:
    bad = auth_dir / "claude-bad.json"
    bad.write_bytes(content)
    os.chmod(bad, 0o644)
    before = bad.stat()
    put(auth_dir, "claude-good.json", claude("tok-good"))

    result = store.scan()
    assert set(result.added) == {"claude-bad.json", "claude-good.json"}
    assert [c.id for c in store.credentials] == ["claude-good.json"]
    assert len(warnings) == 1
    assert "claude-bad.json" in warnings[0]
    assert "skipped" in warnings[0]
    # Never rewritten, never deleted, never moved.
    assert bad.read_bytes() == content
    after = bad.stat()
    assert (after.st_mtime_ns, after.st_ino, stat.S_IMODE(after.st_mode)) == (
        before.st_mtime_ns, before.st_ino, 0o644
    )
    assert not (auth_dir / ".removed").exists()

    # An unchanged corrupt file is not warned about again on every scan.
    store.scan()
    assert len(warnings) == 1


def test_file_turning_corrupt_drops_credential_and_recovers(
    store: AuthStore, auth_dir: Path, warnings: list[str]
) -> None:
    path = put(auth_dir, "claude-a.json", claude("tok-a"))
    store.scan()
    assert store.get("claude-a.json") is not None

    st = path.stat()
    path.write_text("{half written")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert store.scan().changed == ("claude-a.json",)
    assert store.get("claude-a.json") is None
    assert path.read_text() == "{half written"
    assert len(warnings) == 1

    bump(path, claude("tok-fixed"))
    assert store.scan().changed == ("claude-a.json",)
    assert store.get("claude-a.json").secret == "tok-fixed"


def test_file_vanishing_during_scan_is_not_fatal(
    store: AuthStore, auth_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(auth_dir, "claude-a.json", claude("tok-a"))
    put(auth_dir, "claude-gone.json", claude("tok-gone"))
    real_scandir = os.scandir

    class Vanished:
        name = "claude-gone.json"

        def is_file(self) -> bool:
            return True

        def is_symlink(self) -> bool:
            return False

        def stat(self):
            raise FileNotFoundError(self.name)

    def scandir(path):
        entries = [e for e in real_scandir(path) if e.name != "claude-gone.json"]
        return iter([*entries, Vanished()])

    monkeypatch.setattr(authstore.os, "scandir", scandir)
    assert store.scan().added == ("claude-a.json",)


def test_scan_uses_config_oauth_sections(tmp_path: Path) -> None:
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    (cfg_dir / "config.yaml").write_text("oauth-excluded-models:\n  claude: ['claude-3-*']\n")
    config = load_config(
        env={"QUOTIO_CONFIG_DIR": str(cfg_dir), "QUOTIO_AUTH_DIR": str(tmp_path / "auth")}
    )
    config.auth_dir.mkdir()
    put(config.auth_dir, "claude-a.json", claude("tok"))
    store = AuthStore(config)
    store.scan()
    assert store.get("claude-a.json").excluded_models == ("claude-3-*",)


# --- write_json_atomic ----------------------------------------------------------------


def test_write_json_atomic_mode_and_content(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "claude-a.json"
    write_json_atomic(path, claude("tok"))
    assert json.loads(path.read_text()) == claude("tok")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["claude-a.json"]


def test_write_json_atomic_replaces_and_tightens_mode(tmp_path: Path) -> None:
    path = tmp_path / "claude-a.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    write_json_atomic(path, {"type": "claude", "access_token": "new"})
    assert json.loads(path.read_text())["access_token"] == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["claude-a.json"]


def test_write_failure_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "claude-a.json"
    write_json_atomic(path, claude("old-token"))
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(authstore.json, "dump", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_json_atomic(path, claude("new-token"))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["claude-a.json"]  # no temp file left behind


def test_write_failure_on_new_file_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(authstore.json, "dump", lambda *a, **k: (_ for _ in ()).throw(OSError("full")))
    with pytest.raises(OSError):
        write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert os.listdir(tmp_path) == []


def test_store_write_loads_it(store: AuthStore, auth_dir: Path) -> None:
    path = store.write("claude-new.json", claude("tok-new"))
    assert path == auth_dir / "claude-new.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.get("claude-new.json").secret == "tok-new"


@pytest.mark.parametrize("name", ["../escape.json", "sub/x.json", ".hidden.json", "claude.txt"])
def test_store_write_rejects_bad_names(store: AuthStore, auth_dir: Path, name: str) -> None:
    with pytest.raises(ValueError):
        store.write(name, claude("t"))
    assert os.listdir(auth_dir) == []
    assert not (auth_dir.parent / "escape.json").exists()


# --- remove -------------------------------------------------------------------------------


def test_remove_moves_aside_recoverably(store: AuthStore, auth_dir: Path) -> None:
    path = put(auth_dir, "claude-a.json", claude("tok-a"))
    content = path.read_bytes()
    store.scan()

    dest = store.remove("claude-a.json")
    assert not path.exists()
    assert dest.parent == auth_dir / ".removed"
    assert dest.name.startswith("claude-a.json.")
    assert dest.read_bytes() == content
    assert store.get("claude-a.json") is None
    # Already picked up by the scan that remove() runs.
    assert store.scan() == ScanResult((), (), ())

    # Recoverable: moving it back restores the credential.
    os.replace(dest, path)
    assert store.scan().added == ("claude-a.json",)
    assert store.get("claude-a.json").secret == "tok-a"


def test_remove_twice_keeps_both_copies(store: AuthStore, auth_dir: Path) -> None:
    put(auth_dir, "claude-a.json", claude("first"))
    first = store.remove("claude-a.json")
    put(auth_dir, "claude-a.json", claude("second"))
    second = store.remove("claude-a.json")
    assert first != second
    assert json.loads(first.read_text())["access_token"] == "first"
    assert json.loads(second.read_text())["access_token"] == "second"
    assert len(os.listdir(auth_dir / ".removed")) == 2


def test_remove_missing_raises_and_deletes_nothing(store: AuthStore, auth_dir: Path) -> None:
    put(auth_dir, "claude-a.json", claude("tok-a"))
    with pytest.raises(FileNotFoundError):
        store.remove("claude-zzz.json")
    assert os.listdir(auth_dir) == ["claude-a.json"]


def test_remove_corrupt_file_keeps_its_bytes(store: AuthStore, auth_dir: Path) -> None:
    bad = auth_dir / "claude-bad.json"
    bad.write_bytes(b"{broken")
    store.scan()
    dest = store.remove("claude-bad.json")
    assert dest.read_bytes() == b"{broken"


def test_a_link_out_of_the_auth_dir_is_not_followed(store: AuthStore, auth_dir: Path, warnings: list[str],
                                                     tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps(claude("tok-outside")))
    (auth_dir / "claude-link.json").symlink_to(outside)
    put(auth_dir, "claude-in.json", claude("tok-in"))
    (auth_dir / "claude-inner-link.json").symlink_to(auth_dir / "claude-in.json")
    store.scan()
    assert [c.id for c in store.credentials] == ["claude-in.json", "claude-inner-link.json"]
    assert any("links out of the auth dir" in w for w in warnings)
    # Removing moves the link itself; its target stays where it is.
    store.remove("claude-link.json")
    assert outside.exists() and not (auth_dir / "claude-link.json").exists()


@pytest.mark.parametrize("name", ["../x.json", "/etc/passwd", "a/b.json", "x\nfake.json", ".hidden.json",
                                  "x.txt", "a" * 300 + ".json", "x\x00.json"])
def test_names_that_could_leave_the_auth_dir_are_refused(store: AuthStore, name: str) -> None:
    with pytest.raises(ValueError):
        store.path_for(name)
    with pytest.raises(ValueError):
        store.write(name, claude("t"))
    with pytest.raises(ValueError):
        store.remove(name)
