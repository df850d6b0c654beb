"""Layering: config and audio/ never import wake/ (the engine interface and the keyword
catalogue they need are in core.wakeword), and core/ imports no adapter at all.

Walked over module ASTs, so a lazy import inside a function or under TYPE_CHECKING counts
too; then checked at run time, so an import through a third module counts as well.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import pivox

PKG = Path(pivox.__file__).parent
ADAPTERS = ("pivox.wake", "pivox.audio", "pivox.link", "pivox.hw", "pivox.daemon",
            "pivox.diag", "pivox.reference")


def imported(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved, wherever in the file."""
    package = ".".join(("pivox", *path.relative_to(PKG).with_suffix("").parts[:-1]))
    return imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def under(names: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes))


def modules(*rel: str) -> list[Path]:
    out: list[Path] = []
    for r in rel:
        p = PKG / r
        out += sorted(p.glob("*.py")) if p.is_dir() else [p]
    return out


def test_the_walker_sees_lazy_relative_and_type_checking_imports() -> None:
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
              "    from ..wake.base import Scorer\n"
              "def f():\n    import pivox.wake\n")
    assert under(imports_in(source, "pivox.audio"), ("pivox.wake",)) == [
        "pivox.wake", "pivox.wake.base", "pivox.wake.base.Scorer"]


@pytest.mark.parametrize("path", modules("config.py", "audio"), ids=lambda p: p.stem)
def test_config_and_audio_do_not_import_wake(path: Path) -> None:
    assert under(imported(path), ("pivox.wake",)) == []


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: p.stem)
def test_the_core_imports_no_adapter(path: Path) -> None:
    assert under(imported(path), ADAPTERS) == []


def test_importing_config_and_audio_loads_nothing_from_wake() -> None:
    names = ["pivox.config"] + [f"pivox.audio.{p.stem}" for p in modules("audio")
                                if p.stem != "__init__"]
    code = ("import sys\n" + "".join(f"import {n}\n" for n in names)
            + "print(sorted(m for m in sys.modules if m.startswith('pivox.wake')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
