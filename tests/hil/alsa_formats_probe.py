"""Runs inside a process whose ALSA config defines file-plugin PCMs (see test_alsa_formats).

argv: a JSON list of cases; each reads `frames` frames through AlsaSource and writes what
came out to `out`, or plays `play` through AlsaSink. libasound reads its config once per
process, which is why this is a separate process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pivox.audio.alsa import AlsaSink, AlsaSource


def main() -> None:
    for case in json.loads(sys.argv[1]):
        if case["kind"] == "capture":
            src = AlsaSource(case["pcm"], case["rate"], case["channels"], case["format"],
                             case["channel"], 20, 20)
            data = b"".join(src.read() for _ in range(case["frames"]))
            src.close()
            Path(case["out"]).write_bytes(data)
        else:
            sink = AlsaSink(case["pcm"], case["rate"], 1, 20)
            sink.write(Path(case["play"]).read_bytes())
            sink.close()


if __name__ == "__main__":
    main()
