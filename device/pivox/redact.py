"""Keep credentials out of log lines, whoever writes them.

websockets logs request lines and headers at DEBUG; the API key travels in a header
(`x-goog-api-key`) or a query parameter (`key=`, `access_token=`), so both are masked.
"""

from __future__ import annotations

import logging
import re
from typing import Any

SECRET_HEADERS = frozenset({"x-goog-api-key", "authorization"})
SECRET_PARAMS = re.compile(r"((?:key|access_token)=)[^&\s\"'<>]+")


def scrub(text: str) -> str:
    return SECRET_PARAMS.sub(r"\1<redacted>", text)


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for websockets that masks credentials in headers and URLs."""

    def log(self, level: int, msg: object, *args: object, **kw: Any) -> None:
        if not self.isEnabledFor(level):
            return
        if len(args) == 2 and str(args[0]).lower() in SECRET_HEADERS:
            args = (args[0], "<redacted>")
        args = tuple(scrub(a) if isinstance(a, str) else a for a in args)
        super().log(level, msg, *args, **kw)
