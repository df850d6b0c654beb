"""Each supported Live model, end to end: its own setup rules, tools, a whole conversation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from live import make_config

from pivox.core.models import GEMINI_25, GEMINI_31, GEMINI_38, ModelProfile
from pivox.reference.server import ReferenceServer

MODELS = [("gemini-3.8-live", GEMINI_38), ("gemini-3.1-flash-live-preview", GEMINI_31),
          ("gemini-2.5-flash-native-audio-preview-12-2025", GEMINI_25)]
OPTIONS = {  # one option each model supports and the others refuse
    "gemini-3.8-live": "",
    "gemini-3.1-flash-live-preview": 'thinking_level = "MINIMAL"',
    "gemini-2.5-flash-native-audio-preview-12-2025": 'thinking_budget = 256\n'
                                                     'affective_dialog = "on"',
}


@pytest.mark.parametrize(("model", "profile"), MODELS, ids=[m for m, _ in MODELS])
def test_conversation_with_a_tool_call(model: str, profile: ModelProfile, tmp_path: Path,
                                       run_daemon) -> None:
    async def main():
        server = ReferenceServer(tool_call=("set_volume", {"level": 3}))
        await server.start()
        try:
            cfg = make_config(tmp_path, server.url,
                              link=f'model = "{model}"\n{OPTIONS[model]}')
            run = await run_daemon(cfg, lambda r: "speaking" in r.states
                                   and r.states[-1] == "idle")
        finally:
            await server.stop()
        return server, run

    server, run = asyncio.run(main())
    setup = server.received[0]["setup"]
    assert setup["model"] == f"models/{model}"
    gen = setup["generationConfig"]
    decls = setup["tools"][0]["functionDeclarations"]
    if profile is GEMINI_38:
        assert "thinkingConfig" not in gen and "proactivity" not in setup
        # Device actions run alongside the talk; the local time is needed to answer.
        assert all(d["behavior"] == ("BLOCKING" if d["name"] == "get_local_time"
                                     else "NON_BLOCKING") for d in decls)
    elif profile is GEMINI_31:
        assert gen["thinkingConfig"] == {"thinkingLevel": "MINIMAL"}
        assert all("behavior" not in d for d in decls)
    else:
        assert gen["thinkingConfig"] == {"thinkingBudget": 256}
        assert gen["enableAffectiveDialog"] is True
    # The tool ran on the device and was answered, with scheduling where supported.
    responses = [m["toolResponse"] for m in server.received if "toolResponse" in m]
    assert len(responses) == 1
    (resp,) = responses[0]["functionResponses"]
    assert resp["name"] == "set_volume" and resp["response"] == {"result": "volume set to 3"}
    assert ("scheduling" in resp) == profile.tool_scheduling
    assert run.final_status["audio"]["volume"] == pytest.approx(0.3)
    visited = [s for i, s in enumerate(run.states) if i == 0 or run.states[i - 1] != s]
    assert visited[-2:] == ["speaking", "idle"]
