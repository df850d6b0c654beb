"""`python -m pivox.diag --redact-config PATH` | `--scrub DIR [--config PATH]`: the steps
scripts/collect-diagnostics takes to keep secrets out of a support bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pivox import config as config_mod
from pivox.diag.bundle import load_or_none, redacted_config, scrub_tree
from pivox.secrets import config_secrets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pivox.diag")
    p.add_argument("--config", default=str(config_mod.DEFAULT_PATH))
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--redact-config", metavar="PATH")
    g.add_argument("--scrub", metavar="DIR")
    args = p.parse_args(argv)
    if args.redact_config:
        sys.stdout.write(redacted_config(args.redact_config))
        return 0
    scrub_tree(Path(args.scrub), config_secrets(load_or_none(args.config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
