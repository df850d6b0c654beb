"""Secrets, in one place: where the API key comes from, and keeping keys out of any text.

The link, `pivox diag` and `scripts/collect-diagnostics` all ask here, so the key the
diagnostics report is the key the service would use, and every output is scrubbed the
same way. Nothing here logs: a problem names a path, never what the file holds.

websockets logs request lines and headers at DEBUG; the API key travels in a header
(`x-goog-api-key`, `Authorization`) or a query parameter (`key=`, `access_token=`), so
`RedactingLogger` masks both before any handler sees them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pivox.config import Config, LinkConfig

CREDENTIAL = Path("/etc/pivox/credentials/gemini_api_key")  # what the shipped unit loads
CREDENTIAL_NAME = "gemini_api_key"  # its name under $CREDENTIALS_DIRECTORY
SECRET_HEADERS = frozenset({"x-goog-api-key", "authorization"})
# key=... and access_token=... in URLs; stops at quotes so JSON and TOML stay valid.
SECRET_PARAMS = re.compile(r"((?:key|access_token)=)[^&\s\"'<>]+")
GOOGLE_KEY = re.compile(r"AIza[0-9A-Za-z_\-]{30,}")  # the shape of a Google API key
MASK = "<redacted>"


@dataclass(frozen=True)
class KeyLookup:
    """The key the service would use, where it came from, and what was wrong on the way."""

    key: str | None
    source: str
    problems: tuple[str, ...]


def read_secret_file(path: Path) -> tuple[str | None, str]:
    """(secret or None, problem). The first line that is neither blank nor a comment; the
    problem names the path, never the contents. A missing file is no problem."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None, ""
    except PermissionError:
        return None, f"{path} is not readable by this user"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path}: {getattr(exc, 'strerror', None) or 'unreadable'}"
    key = next((ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")),
               "")
    return (key or None), ("" if key else f"{path} is empty")


def _key_files(link: LinkConfig, env: Mapping[str, str]) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    if link.api_key_file:
        files.append((Path(link.api_key_file), f"api_key_file {link.api_key_file}"))
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        files.append((Path(cred_dir) / CREDENTIAL_NAME, "systemd credential"))
    files.append((CREDENTIAL, f"credential file {CREDENTIAL}"))
    return files


def find_api_key(link: LinkConfig, env: Mapping[str, str] | None = None) -> KeyLookup:
    """The configured key file, then the systemd credential, then the installed credential
    file, then the environment variable named by `link.api_key_env`."""
    env = os.environ if env is None else env
    problems: list[str] = []
    for path, source in _key_files(link, env):
        key, problem = read_secret_file(path)
        if key:
            return KeyLookup(key, source, tuple(problems))
        if problem:
            problems.append(problem)
    value = env.get(link.api_key_env, "").strip()
    if value:
        return KeyLookup(value, f"${link.api_key_env}", tuple(problems))
    return KeyLookup(None, "", tuple(problems))


def read_api_key(link: LinkConfig) -> str | None:
    return find_api_key(link).key


def secret_values(link: LinkConfig, extra_files: tuple[str, ...] = (),
                  extra_envs: tuple[str, ...] = ()) -> list[str]:
    """Every secret value this machine knows of (API keys, and any other credential files
    and variables named), longest first, for scrubbing whole outputs."""
    found: set[str] = set()
    paths = [p for p, _ in _key_files(link, os.environ)] + [Path(f) for f in extra_files if f]
    for path in paths:
        key, _ = read_secret_file(path)
        if key:
            found.add(key)
    names = {link.api_key_env, "GEMINI_API_KEY", "GOOGLE_API_KEY", "PICOVOICE_ACCESS_KEY",
             *extra_envs}
    for name in names:
        if name and os.environ.get(name, "").strip():
            found.add(os.environ[name].strip())
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def config_secrets(cfg: Config | None) -> list[str]:
    """`secret_values` for a whole config (the link's key, the wake engine's AccessKey and
    the MQTT broker's password); the built-in defaults when the config would not load."""
    if cfg is None:
        from pivox import config as config_mod  # config imports much; only this needs it

        cfg = config_mod.Config()
    return secret_values(cfg.link, (cfg.wake.access_key_file, cfg.mqtt.password_file),
                         (cfg.wake.access_key_env,))


def scrub(text: str) -> str:
    """Mask credentials in URLs and anything shaped like a Google API key."""
    return GOOGLE_KEY.sub(MASK, SECRET_PARAMS.sub(rf"\1{MASK}", text))


def redact(text: str, secrets: list[str]) -> str:
    """`scrub`, and every known secret value wherever it appears."""
    for s in secrets:
        text = text.replace(s, MASK)
    return scrub(text)


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger for websockets that masks credentials in headers and URLs."""

    def log(self, level: int, msg: object, *args: object, **kw: Any) -> None:
        if not self.isEnabledFor(level):
            return
        if len(args) == 2 and str(args[0]).lower() in SECRET_HEADERS:
            args = (args[0], MASK)
        args = tuple(scrub(a) if isinstance(a, str) else a for a in args)
        super().log(level, msg, *args, **kw)
