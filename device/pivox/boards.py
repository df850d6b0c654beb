"""Board profiles (hardware/boards/*.toml): what a HAT or USB array needs in pivox.toml,
its ALSA configuration and its /boot/firmware/config.txt lines.

`python -m pivox.boards list` names them; `python -m pivox.boards config NAME` prints the
pivox.toml for a board (the installer uses it). Only the standard library is imported, so
this runs before the project is installed.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HARDWARE = Path(__file__).resolve().parents[2] / "hardware"


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    description: str
    sources: tuple[str, ...]
    unverified: tuple[str, ...]
    pivox: dict[str, Any]
    alsa_conf: Path
    boot_lines: Path


def list_boards(root: Path = HARDWARE) -> list[str]:
    return sorted(p.stem for p in (root / "boards").glob("*.toml"))


def load_board(name: str, root: Path = HARDWARE) -> Board:
    path = root / "boards" / f"{name}.toml"
    if not path.is_file():
        raise ValueError(f"no board profile {name!r}; known: {', '.join(list_boards(root))}")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    meta = data.get("board", {})
    return Board(name=name, title=meta.get("name", name),
                 description=meta.get("description", ""),
                 sources=tuple(meta.get("sources", ())),
                 unverified=tuple(meta.get("unverified", ())),
                 pivox=data.get("pivox", {}), alsa_conf=root / "alsa" / f"{name}.conf",
                 boot_lines=root / "boot" / f"{name}.txt")


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _tables(prefix: str, table: dict[str, Any], out: list[str]) -> None:
    plain = {k: v for k, v in table.items() if not isinstance(v, dict)}
    if plain:
        if prefix:
            out.append(f"[{prefix}]")
        out += [f"{k} = {_value(v)}" for k, v in plain.items()]
        out.append("")
    for k, v in table.items():
        if isinstance(v, dict):
            _tables(f"{prefix}.{k}" if prefix else k, v, out)


def board_config_toml(board: Board) -> str:
    """The board's pivox.toml, with where its facts come from."""
    out = [f"# Pivox configuration for the {board.title} (hardware/boards/{board.name}.toml).",
           *(f"# source: {s}" for s in board.sources),
           *(f"# unverified: {u}" for u in board.unverified), ""]
    _tables("", board.pivox, out)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["list"]:
        for name in list_boards():
            print(f"{name:<22} {load_board(name).title}")
        return 0
    if len(argv) == 2 and argv[0] == "config":
        try:
            print(board_config_toml(load_board(argv[1])), end="")
        except ValueError as exc:
            print(f"pivox: {exc}", file=sys.stderr)
            return 2
        return 0
    print("usage: python -m pivox.boards list | config NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
