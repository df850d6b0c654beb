"""Wake engines behind one interface (`core.wakeword.WakeEngine`), chosen by `[wake] engine`.

If the chosen engine cannot start here (Porcupine without a valid AccessKey, an optional
package not installed, a model file that will not load), the speaker falls back to the
default engine and keyword rather than going deaf, and says why once in the journal and
in status (`wake.fallback`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pivox.core.wakeword import DEFAULT_ENGINE, DEFAULT_KEYWORD, ENGINES, WakeEngine, keyword_id
from pivox.wake.base import Scorer, WakeSetupError
from pivox.wake.spotter import Spotter

if TYPE_CHECKING:
    from pivox.config import WakeConfig

log = logging.getLogger("pivox.wake")

__all__ = [
    "ENGINES",
    "WakeEngine",
    "WakeSetupError",
    "engine_for",
    "make_engine",
    "make_scorer",
]


def make_scorer(engine: str, specs: Sequence[str], cutoffs: Mapping[str, float] | None = None,
                access_key: str = "") -> Scorer:
    """Engines import lazily, so an optional engine's package is only needed when chosen."""
    if engine == "micro":
        from pivox.wake.micro import MicroScorer

        return MicroScorer(specs)
    if engine == "openwakeword":
        try:
            from pivox.wake.openww import OpenWakeScorer
        except ImportError:
            raise WakeSetupError("the openwakeword engine is not installed "
                                 "(pip install pyopen-wakeword)") from None
        return OpenWakeScorer(specs)
    if engine == "porcupine":
        from pivox.wake.porcupine import PorcupineScorer

        return PorcupineScorer(specs, access_key, cutoffs)
    raise ValueError(f"unknown wake engine {engine!r}; choose one of {', '.join(ENGINES)}")


def make_engine(engine: str = DEFAULT_ENGINE, keywords: Sequence[str] = (DEFAULT_KEYWORD,),
                stop: Sequence[str] = (), cutoff: float = 0.0,
                cutoffs: Mapping[str, float] | None = None, refractory_s: float = 2.0,
                access_key: str = "") -> Spotter:
    """One engine for wake words and stop words, with no fallback (errors propagate)."""
    specs = list(dict.fromkeys([*keywords, *stop]))
    cut = dict(cutoffs or {})
    scorer = make_scorer(engine, specs, {k: cut.get(k) or cutoff for k in map(keyword_id, specs)},
                         access_key)
    return Spotter(scorer, [keyword_id(k) for k in keywords], [keyword_id(k) for k in stop],
                   cut, cutoff, refractory_s)


def engine_for(wake: WakeConfig, env: Mapping[str, str] | None = None) -> WakeEngine:
    """The configured engine, or the default one with `fallback_reason` saying why."""
    try:
        key = ""
        if wake.engine == "porcupine":
            from pivox.wake.porcupine import read_access_key

            key = read_access_key(wake.access_key_env, wake.access_key_file, env)
        return make_engine(wake.engine, wake.wake_keywords, wake.stop_keywords, wake.cutoff,
                           wake.cutoffs, wake.refractory_s, key)
    except WakeSetupError as exc:
        if wake.engine == DEFAULT_ENGINE and wake.wake_keywords == (DEFAULT_KEYWORD,):
            raise
        reason = str(exc)
    log.error("wake engine %s cannot start: %s; listening for %s (%s) instead",
              wake.engine, reason, DEFAULT_KEYWORD, DEFAULT_ENGINE)
    engine = make_engine(refractory_s=wake.refractory_s)
    engine.fallback_reason = reason
    return engine
