"""pivox.secrets: where the API key comes from, in which order, what a bad file reports
(its path, never its contents), and what redaction masks in text and in websockets' logs."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pivox import secrets
from pivox.config import Config, LinkConfig
from pivox.secrets import (
    MASK,
    RedactingLogger,
    config_secrets,
    find_api_key,
    read_secret_file,
    redact,
    scrub,
    secret_values,
)

GOOGLE = "AIzaSyD-unit-test-0123456789abcdefghijkl"  # the shape of a Google API key


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The installed credential file, moved under tmp_path."""
    path = tmp_path / "etc" / "gemini_api_key"
    path.parent.mkdir()
    monkeypatch.setattr(secrets, "CREDENTIAL", path)
    return path


def test_lookup_order_file_then_credential_then_installed_then_environment(
        tmp_path: Path, installed: Path) -> None:
    own = tmp_path / "own_key"
    cred_dir = tmp_path / "creds"
    cred_dir.mkdir()
    own.write_text("from-file\n")
    (cred_dir / "gemini_api_key").write_text("from-credential\n")
    installed.write_text("from-installed\n")
    link = LinkConfig(api_key_file=str(own), api_key_env="MY_KEY")
    env = {"CREDENTIALS_DIRECTORY": str(cred_dir), "MY_KEY": "from-env"}

    found = find_api_key(link, env)
    assert (found.key, found.source) == ("from-file", f"api_key_file {own}")
    own.unlink()
    assert find_api_key(link, env).source == "systemd credential"
    (cred_dir / "gemini_api_key").unlink()
    found = find_api_key(link, env)
    assert (found.key, found.source) == ("from-installed", f"credential file {installed}")
    installed.unlink()
    found = find_api_key(link, env)
    assert (found.key, found.source, found.problems) == ("from-env", "$MY_KEY", ())
    assert find_api_key(link, {}).key is None
    assert find_api_key(dataclasses.replace(link, api_key_file=""), {"MY_KEY": " k \n"}).key \
        == "k"


def test_comments_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("# the Gemini key, made 2026-11-30\n\n   \n  the-key  \n# old: other\n")
    assert read_secret_file(f) == ("the-key", "")
    assert read_secret_file(tmp_path / "missing") == (None, "")  # missing: no problem


def test_empty_and_unreadable_files_name_the_path_never_the_contents(
        tmp_path: Path, installed: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("# only a comment that mentions hunter2\n\n")
    key, problem = read_secret_file(empty)
    assert key is None and problem == f"{empty} is empty"
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe-not-utf8-hunter2")
    key, problem = read_secret_file(binary)
    assert key is None and problem == f"{binary}: unreadable"
    key, problem = read_secret_file(tmp_path)  # a directory
    assert key is None and problem.startswith(f"{tmp_path}: ") and "hunter2" not in problem

    installed.write_text("the-installed-key\n")
    found = find_api_key(LinkConfig(api_key_file=str(empty)), {})
    assert found.key == "the-installed-key"  # a bad file is reported, and the lookup goes on
    assert found.problems == (f"{empty} is empty",)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")
def test_a_file_this_user_cannot_read_is_reported_by_path(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    f = tmp_path / "root_only"
    f.write_text("hunter2-root-only\n")
    f.chmod(0o600)
    code = ("import sys; from pathlib import Path; from pivox.secrets import "
            "read_secret_file; print(read_secret_file(Path(sys.argv[1])))")
    out = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                          sys.executable, "-c", code, str(f)], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    assert out.strip() == repr((None, f"{f} is not readable by this user"))


def test_redact_masks_known_values_url_params_and_google_key_shapes() -> None:
    text = (f'url = "wss://h/ws?key=abc123&alt=json" token=sk-known-value\n'
            f'{{"u": "https://h/x?access_token=ya29.tok", "k": "{GOOGLE}"}}\n')
    out = redact(text, ["sk-known-value"])
    assert out == (f'url = "wss://h/ws?key={MASK}&alt=json" token={MASK}\n'
                   f'{{"u": "https://h/x?access_token={MASK}", "k": "{MASK}"}}\n')
    assert scrub("keyboard=1 monkey") == "keyboard=1 monkey"  # no key= parameter there
    assert scrub(f"x{GOOGLE[:-12]}") == f"x{GOOGLE[:-12]}"  # too short to be a key


def test_secret_values_knows_files_and_variables_longest_first(
        tmp_path: Path, installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "PICOVOICE_ACCESS_KEY",
                 "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    own = tmp_path / "own"
    own.write_text("file-secret-long\n")
    porcupine = tmp_path / "porcupine"
    porcupine.write_text("# AccessKey\npv-access-key\n")
    monkeypatch.setenv("GEMINI_API_KEY", "env-secret")
    monkeypatch.setenv("MY_PV", "pv-from-env")
    monkeypatch.setenv("SHORT", "abc")
    link = LinkConfig(api_key_file=str(own))
    assert secret_values(link) == ["file-secret-long", "env-secret"]
    assert secret_values(link, (str(porcupine),), ("MY_PV", "SHORT")) == [
        "file-secret-long", "pv-access-key", "pv-from-env", "env-secret"]  # "abc": too short
    cfg = Config(link=link)
    cfg = dataclasses.replace(cfg, wake=dataclasses.replace(
        cfg.wake, access_key_file=str(porcupine), access_key_env="MY_PV"))
    assert set(config_secrets(cfg)) == {"file-secret-long", "pv-access-key", "pv-from-env",
                                        "env-secret"}


def test_the_websockets_logger_masks_header_values_and_url_params() -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    base = logging.getLogger("test.secrets.ws")
    base.addHandler(handler)
    base.setLevel(logging.DEBUG)
    base.propagate = False
    log = RedactingLogger(base, {})
    log.debug("> %s: %s", "x-goog-api-key", "the-header-key")
    log.debug("> %s: %s", "Authorization", "Token the-token")
    log.debug("> GET %s HTTP/1.1", "/ws?key=the-url-key&alt=1")
    log.debug("> %s: %s", "Host", "example.org")
    lines = [r.getMessage() for r in records]
    assert lines == [f"> x-goog-api-key: {MASK}", f"> Authorization: {MASK}",
                     f"> GET /ws?key={MASK}&alt=1 HTTP/1.1", "> Host: example.org"]
    base.setLevel(logging.INFO)
    log.debug("> %s: %s", "x-goog-api-key", "not-logged")
    assert len(records) == 4
