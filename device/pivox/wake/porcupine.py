"""Porcupine (pvporcupine, an optional extra: `pip install pivox[porcupine]`).

Picovoice's engine needs an AccessKey, read from an environment variable or a credential
file (systemd's LoadCredential=), never from the TOML. Picovoice's own error text quotes
the key, so its errors are replaced by ours, which name the problem and never the key.
Porcupine answers yes/no per 32 ms frame rather than a probability: a detection scores
1.0, and the cutoff becomes its sensitivity (1 - cutoff), so raising either is stricter.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from pivox.core.wakeword import builtin, is_model_file, keyword_id
from pivox.secrets import read_secret_file
from pivox.wake.base import WakeSetupError

DEFAULT_SENSITIVITY = 0.5


def read_access_key(env_name: str, file: str, env: Mapping[str, str] | None = None) -> str:
    """The AccessKey from the file if one is named, else the environment variable."""
    env = os.environ if env is None else env
    if file:
        key, problem = read_secret_file(Path(file))  # a problem names the path, not the key
        if key:
            return key
        raise WakeSetupError("Porcupine AccessKey file "
                             + (problem or f"{file} is unreadable (No such file or directory)"))
    key = env.get(env_name, "").strip()
    if not key:
        raise WakeSetupError(f"no Porcupine AccessKey: set ${env_name} or wake.access_key_file")
    return key


class PorcupineScorer:
    name = "porcupine"

    def __init__(self, specs: Sequence[str], access_key: str,
                 cutoffs: Mapping[str, float] | None = None) -> None:
        try:
            import pvporcupine
        except ImportError:
            raise WakeSetupError("the porcupine engine is not installed "
                                 "(pip install pivox[porcupine])") from None
        if not access_key:
            raise WakeSetupError("no Porcupine AccessKey")
        self.keywords = tuple(keyword_id(s) for s in specs)
        for s in specs:
            builtin("porcupine", s)
        paths = [s if is_model_file(s) else pvporcupine.KEYWORD_PATHS[s.replace("_", " ")]
                 for s in specs]
        sensitivities = [1.0 - (cutoffs or {}).get(k, 0.0) if (cutoffs or {}).get(k)
                         else DEFAULT_SENSITIVITY for k in self.keywords]
        try:
            self._engine = pvporcupine.create(access_key=access_key, keyword_paths=paths,
                                              sensitivities=sensitivities)
        except pvporcupine.PorcupineError as exc:
            # The library's message quotes the key: say which kind of refusal it was.
            raise WakeSetupError(f"Porcupine refused to start ({type(exc).__name__}): "
                                 f"{_reason(exc)}") from None
        except (ValueError, OSError) as exc:  # e.g. a keyword file it cannot read
            raise WakeSetupError(str(exc).replace(access_key, "***")) from None
        self._frame = self._engine.frame_length * 2  # bytes of s16le
        self._pending = b""

    def default_cutoff(self, keyword: str) -> float:
        return 0.5  # a detection scores 1.0, so any cutoff below it lets it through

    def scores(self, pcm: bytes) -> Iterator[tuple[str, float]]:
        import numpy as np

        buf = self._pending + pcm
        n = len(buf) // self._frame * self._frame
        self._pending = buf[n:]
        for i in range(0, n, self._frame):
            index = self._engine.process(np.frombuffer(buf[i:i + self._frame], "<i2"))
            if index >= 0:
                yield self.keywords[index], 1.0

    def reset_keyword(self, keyword: str) -> None:
        pass  # Porcupine keeps no per-keyword window worth clearing

    def reset(self) -> None:
        self._pending = b""

    def close(self) -> None:
        self._engine.delete()


def _reason(exc: Exception) -> str:
    name = type(exc).__name__
    if "Activation" in name:
        return "the AccessKey was not accepted by Picovoice (check it, and the network)"
    if "InvalidArgument" in name:
        return "the AccessKey or a keyword file is invalid"
    return "see Picovoice's documentation for this error class"
