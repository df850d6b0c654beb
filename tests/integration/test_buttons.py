"""Buttons on real gpiozero (its MockFactory pins): each press does what its label says."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin
from live import make_config, run_daemon, wait_for

from pivox.reference.server import ReferenceServer

TALK, MUTE, UP, DOWN = 17, 27, 22, 23


@pytest.fixture
def pins():
    Device.pin_factory = MockFactory(pin_class=MockPWMPin)
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory.close()
    Device.pin_factory = None


def press(factory, pin: int, hold_s: float = 0.1) -> None:
    factory.pin(pin).drive_low()
    time.sleep(hold_s)
    factory.pin(pin).drive_high()


def test_talk_mute_volume_and_long_press(pins, tmp_path: Path) -> None:
    async def main():
        server = ReferenceServer()
        await server.start()
        cfg = make_config(tmp_path, server.url, extra=f"""
[buttons]
talk = {TALK}
mute = {MUTE}
volume_up = {UP}
volume_down = {DOWN}
long_press_s = 1.0
""", mic=Path(__file__).parents[1] / "fixtures" / "wake_negative_london.wav")
        seen: dict = {}

        async def during(run):
            d = run.daemon
            await wait_for(lambda: d.m.state.value == "idle", 10)
            await asyncio.to_thread(press, pins, TALK)
            seen["talk"] = await wait_for(lambda: d.m.state.value == "listening", 3)
            await asyncio.to_thread(press, pins, TALK)  # press again: end the conversation
            seen["end"] = await wait_for(lambda: d.m.state.value == "idle", 3)
            await asyncio.to_thread(press, pins, MUTE)
            seen["mute"] = await wait_for(lambda: d.m.state.value == "muted", 3)
            frames = d.capture.muted_frames
            await asyncio.sleep(0.5)
            seen["gated"] = d.capture.muted_frames > frames
            await asyncio.to_thread(press, pins, MUTE)
            seen["unmute"] = await wait_for(lambda: d.m.state.value == "idle", 3)
            before = d.player.volume
            await asyncio.to_thread(press, pins, DOWN)
            await wait_for(lambda: d.player.volume < before, 2)
            seen["down"] = round(before - d.player.volume, 2)
            await asyncio.to_thread(press, pins, UP)
            await wait_for(lambda: d.player.volume == before, 2)
            seen["up"] = d.player.volume == before
            played = len(d.player.stats.prompts_played)
            await asyncio.to_thread(press, pins, TALK, 1.4)  # a long press: announce
            seen["announce"] = await wait_for(
                lambda: "announce" in d.player.stats.prompts_played[played:], 15)
            seen["state_after_announce"] = d.m.state.value

        try:
            await run_daemon(cfg, lambda r: "announce" in seen, timeout=40, during=during)
        finally:
            await server.stop()
        return seen

    seen = asyncio.run(main())
    assert seen["talk"] and seen["end"], seen
    assert seen["mute"] and seen["gated"] and seen["unmute"], seen
    assert seen["down"] == 0.1 and seen["up"], seen
    assert seen["announce"], seen
    assert seen["state_after_announce"] == "idle", "a long press must not start a conversation"
