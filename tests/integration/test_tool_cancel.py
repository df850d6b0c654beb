"""A tool call the model withdraws at once (toolCallCancellation on the heels of toolCall,
as when the user speaks over it) neither runs nor is answered; one it keeps runs once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from live import make_config, wait_for

from pivox.link.base import FunctionCall, ToolCall, ToolCallCancelled
from pivox.reference.server import ReferenceServer


def test_a_cancelled_tool_call_neither_runs_nor_is_answered(tmp_path: Path, run_daemon
                                                            ) -> None:
    async def main():
        server = ReferenceServer()
        await server.start()

        async def during(run) -> None:
            d = run.daemon
            await wait_for(lambda: d.session is not None and d.session.snapshot().connected,
                           15)
            d.post(ToolCall((FunctionCall("a", "set_volume", {"level": 2}),)))
            d.post(ToolCallCancelled(("a",)))  # back to back, as frames read in one go
            d.post(ToolCall((FunctionCall("b", "set_volume", {"level": 4}),
                             FunctionCall("b", "set_volume", {"level": 9}))))  # repeated id
            await asyncio.sleep(0.5)
            d.post(ToolCallCancelled(("b",)))  # too late: it ran; nothing to undo

        try:
            cfg = make_config(tmp_path, server.url)
            run = await run_daemon(cfg, lambda r: False, timeout=0.1, during=during)
        finally:
            await server.stop()
        return server, run

    server, run = asyncio.run(main())
    responses = [r for m in server.received if "toolResponse" in m
                 for r in m["toolResponse"]["functionResponses"]]
    assert [r["id"] for r in responses] == ["b"], responses
    assert run.final_status["audio"]["volume"] == pytest.approx(0.4)
