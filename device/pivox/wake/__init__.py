"""Wake engines behind one interface (`base.WakeEngine`), chosen by `[wake] engine`."""

from __future__ import annotations

from pivox.wake.base import WakeEngine

ENGINES = ("micro",)


def make_engine(engine: str, keyword: str, cutoff: float = 0.0,
                refractory_s: float = 2.0) -> WakeEngine:
    """Build the configured engine. Engines import lazily, so an optional engine's
    package is only needed when it is chosen. Raises ValueError naming the choices."""
    if engine == "micro":
        from pivox.wake.micro import MicroWakeEngine

        return MicroWakeEngine(keyword, cutoff, refractory_s)
    raise ValueError(f"unknown wake engine {engine!r}; choose one of {', '.join(ENGINES)}")
