"""scripts/install and scripts/uninstall, staged under a temporary --root.

Installing twice gives the same files with the same modes; the unit, the config (which
passes `pivox config check`) and the credential (mode 0600, never printed) are in place;
users are added with useradd --root when the root has an /etc/passwd; uninstall removes
what install made and keeps the config unless --purge.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pivox.boards import board_config_toml, load_board

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "scripts" / "install"
UNINSTALL = ROOT / "scripts" / "uninstall"
KEY = "AIzaSy-install-test-key-0123456789abcdef"


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    e.update(extra)
    return e


def sh(script: Path, *args: str, ok: bool = True, **extra: str
       ) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(script), *args], env=env(**extra), capture_output=True,
                          text=True, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def tree(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every path under root: (kind, mode, content hash or link target)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if p.is_symlink():
            out[str(p.relative_to(root))] = ("link", 0, os.readlink(p))
        elif p.is_dir():
            out[str(p.relative_to(root))] = ("dir", st.st_mode & 0o7777, "")
        else:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            out[str(p.relative_to(root))] = ("file", st.st_mode & 0o7777, digest)
    return out


def config_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pivox", "config", "check", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_install_twice_then_uninstall(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = sh(INSTALL, "--root", str(root), "--no-venv")
    assert "no /etc/passwd" in first.stdout  # users: said, not done
    before = tree(root)
    second = sh(INSTALL, "--root", str(root), "--no-venv")
    assert tree(root) == before, "a second install changed the tree"
    assert "wrote" not in second.stdout

    unit = root / "etc/systemd/system/pivox.service"
    assert unit.read_text() == (ROOT / "systemd/pivox.service").read_text()
    assert before["etc/systemd/system/pivox.service"][1] == 0o644
    config = root / "etc/pivox/pivox.toml"
    assert config.read_text() == (ROOT / "hardware/pivox.toml").read_text()
    check = config_check(config)
    assert check.returncode == 0, check.stderr
    creds = root / "etc/pivox/credentials"
    assert before["etc/pivox/credentials"][1] == 0o700
    assert before["etc/pivox/credentials/gemini_api_key"][1] == 0o600
    assert (creds / "gemini_api_key").read_text() == ""  # a placeholder, read as "no key"
    sysusers = (root / "etc/sysusers.d/pivox.conf").read_text()
    for line in ("u pivox -", "m pivox audio", "m pivox gpio", "m pivox spi"):
        assert line in sysusers
    assert not (root / "opt").exists()  # --no-venv

    # Uninstall keeps the config and the key; --purge removes the rest.
    out = sh(UNINSTALL, "--root", str(root))
    assert not unit.exists()
    assert config.exists() and (creds / "gemini_api_key").exists()
    assert "kept /etc/pivox" in out.stdout
    sh(UNINSTALL, "--root", str(root), "--purge")
    assert not (root / "etc/pivox").exists()
    assert [p for p in root.rglob("*") if not p.is_dir()] == []
    sh(UNINSTALL, "--root", str(root), "--purge")  # and again: nothing to do, no error


def test_api_key_from_the_environment_is_stored_not_shown(tmp_path: Path) -> None:
    root = tmp_path / "root"
    key = root / "etc/pivox/credentials/gemini_api_key"
    out = sh(INSTALL, "--root", str(root), "--no-venv", GEMINI_API_KEY=KEY)
    assert key.read_text().strip() == KEY
    assert key.stat().st_mode & 0o777 == 0o600
    assert KEY not in out.stdout + out.stderr
    before = tree(root)
    sh(INSTALL, "--root", str(root), "--no-venv", GEMINI_API_KEY=KEY)
    assert tree(root) == before
    # Without $GEMINI_API_KEY a stored key is kept, not replaced by a placeholder.
    sh(INSTALL, "--root", str(root), "--no-venv")
    assert key.read_text().strip() == KEY
    # A new key replaces the old one.
    sh(INSTALL, "--root", str(root), "--no-venv", GEMINI_API_KEY=KEY + "2")
    assert key.read_text().strip() == KEY + "2"
    assert key.stat().st_mode & 0o777 == 0o600


def test_board_profiles_and_an_edited_config(tmp_path: Path) -> None:
    bad = sh(INSTALL, "--root", str(tmp_path / "r0"), "--no-venv", "--board", "no-such-board",
             ok=False)
    assert bad.returncode == 2 and "no board profile 'no-such-board'" in bad.stderr
    for i, profile in enumerate(sorted((ROOT / "hardware/boards").glob("*.toml"))):
        root = tmp_path / f"r{i + 1}"
        sh(INSTALL, "--root", str(root), "--no-venv", "--board", profile.stem)
        config = root / "etc/pivox/pivox.toml"
        assert config.read_text() == board_config_toml(load_board(profile.stem))
        check = config_check(config)
        assert check.returncode == 0, f"{profile.name}: {check.stderr}"
        alsa = root / "etc/alsa/conf.d/60-pivox.conf"
        assert alsa.read_text() == (ROOT / f"hardware/alsa/{profile.stem}.conf").read_text()

    # An edited config survives a reinstall; --force-config replaces it and keeps a copy.
    root = tmp_path / "edited"
    sh(INSTALL, "--root", str(root), "--no-venv")
    config = root / "etc/pivox/pivox.toml"
    config.write_text(config.read_text().replace("volume = 0.8", "volume = 0.5"))
    edited = config.read_text()
    out = sh(INSTALL, "--root", str(root), "--no-venv")
    assert config.read_text() == edited and "kept your" in out.stdout
    sh(INSTALL, "--root", str(root), "--no-venv", "--force-config")
    assert config.read_text() == (ROOT / "hardware/pivox.toml").read_text()
    assert (root / "etc/pivox/pivox.toml.bak").read_text() == edited


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                    reason="useradd --root needs root")
def test_users_and_groups_are_added_when_the_root_has_a_passwd(tmp_path: Path) -> None:
    root = tmp_path / "root"
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\naudio:x:29:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\naudio:*::\n")
    for f in ("shadow", "gshadow"):
        (etc / f).chmod(0o640)
    out = sh(INSTALL, "--root", str(root), "--no-venv")
    assert "created system user pivox" in out.stdout
    passwd = (etc / "passwd").read_text()
    assert any(line.startswith("pivox:") and line.endswith(":/usr/sbin/nologin")
               for line in passwd.splitlines())
    groups = {line.split(":")[0]: line.split(":")[3].split(",")
              for line in (etc / "group").read_text().splitlines()}
    for g in ("audio", "gpio", "spi"):
        assert "pivox" in groups[g], (g, groups)
    assert "pivox" in groups  # its own group
    before = tree(root)
    sh(INSTALL, "--root", str(root), "--no-venv")
    assert tree(root) == before
    sh(UNINSTALL, "--root", str(root), "--purge")
    assert "pivox:" not in (etc / "passwd").read_text()
