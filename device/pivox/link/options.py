"""The Live session's setup, from config: what the device asks of the model."""

from __future__ import annotations

from pivox.config import Config
from pivox.link import codec as lc
from pivox.link import tools


def setup_options(cfg: Config) -> lc.SetupOptions:
    link, conv = cfg.link, cfg.conversation
    onoff = {"": None, "on": True, "off": False}
    return lc.SetupOptions(
        model=link.model, voice=link.voice,
        system_instruction=tools.with_home(link.system_instruction, cfg.home),
        language=link.language, silence_duration_ms=link.silence_ms,
        automatic_activity=conv.turn_detection == "server",
        start_sensitivity=f"START_SENSITIVITY_{conv.start_sensitivity.upper()}",
        end_sensitivity=f"END_SENSITIVITY_{conv.end_sensitivity.upper()}",
        input_transcription=link.transcripts,
        # A reply that asks is told by its transcription: needed for follow-up = "question".
        output_transcription=link.transcripts or conv.follow_up == "question",
        context_compression=link.context_compression, thinking_level=link.thinking_level,
        thinking_budget=None if link.thinking_budget < 0 else link.thinking_budget,
        proactive_audio=onoff[link.proactive_audio],
        affective_dialog=onoff[link.affective_dialog],
        tools=tools.declarations() if link.tools else (), search=link.search,
    )
