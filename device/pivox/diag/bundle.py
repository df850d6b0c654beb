"""The support bundle's two safeguards (scripts/collect-diagnostics): the config file with
its secrets removed, and a last scrub of every file before it is packed.

Which values count as secret, and how they are masked, is `pivox.secrets`' business: the
bundle masks exactly what the daemon's logs and `pivox diag` mask.
"""

from __future__ import annotations

import re
from pathlib import Path

from pivox import config as config_mod
from pivox.secrets import MASK, config_secrets, redact

SECRET_KEY = re.compile(r"^(\s*)([A-Za-z0-9_.\-\"]*(?:key|token|secret|password)"
                        r"[A-Za-z0-9_.\-\"]*)(\s*=\s*).*$", re.I)
SAFE_KEYS = {"api_key_env", "api_key_file", "access_key_env", "access_key_file"}


def load_or_none(path: str) -> config_mod.Config | None:
    try:
        return config_mod.load(path)
    except config_mod.ConfigError:
        return None


def redacted_config(path: str) -> str:
    """The config file as written, minus anything that could be a secret: values of keys
    named like key/token/secret/password (except the *_env and *_file keys, which hold a
    variable name and a path), credentials in URLs, and key-shaped strings anywhere."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"# {path}: cannot read ({exc.strerror})\n"
    out = [f"# {path}, secrets removed by pivox diag\n"]
    for line in text.splitlines(keepends=True):
        m = SECRET_KEY.match(line)
        if m and m.group(2).strip('"') not in SAFE_KEYS:
            line = f'{m.group(1)}{m.group(2)}{m.group(3)}"{MASK}"\n'
        out.append(line)
    return redact("".join(out), config_secrets(load_or_none(path)))


def scrub_tree(root: Path, secrets: list[str]) -> int:
    """Replace every known secret in every file under `root`; returns files changed."""
    changed = 0
    for f in root.rglob("*"):
        if not f.is_file():
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        clean = redact(text, secrets)
        if clean != text:
            f.write_text(clean, encoding="utf-8")
            changed += 1
    return changed
