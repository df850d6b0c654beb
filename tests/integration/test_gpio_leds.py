"""LEDs through real gpiozero device classes on its MockFactory pins."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from gpiozero import Device, GPIOPinInUse
from gpiozero.pins.mock import MockFactory, MockPWMPin

from pivox.config import LedConfig
from pivox.core.machine import State
from pivox.hw.gpio import LedDriver, LedRing, luminance

RGB_PINS = (17, 27, 22)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    previous = Device.pin_factory
    Device.pin_factory = MockFactory(pin_class=MockPWMPin)
    try:
        yield Device.pin_factory
    finally:
        Device.pin_factory.reset()
        Device.pin_factory.close()
        Device.pin_factory = previous


def levels(factory: MockFactory, pins: tuple[int, ...]) -> tuple[float, ...]:
    return tuple(float(factory.pin(n).state) for n in pins)


def test_rgb_ring_shows_red(factory: MockFactory):
    ring = LedRing.from_config(LedConfig(kind="rgb", pins=RGB_PINS))
    try:
        assert ring.count == 1
        ring.show(((255, 0, 0),))
        assert levels(factory, RGB_PINS) == (1.0, 0.0, 0.0)
        ring.show(((0, 51, 255),))
        assert levels(factory, RGB_PINS) == pytest.approx((0.0, 0.2, 1.0))
        ring.show(())  # nothing to show: dark
        assert levels(factory, RGB_PINS) == (0.0, 0.0, 0.0)
    finally:
        ring.close()


def test_rgb_active_low_inverts_the_pins(factory: MockFactory):
    ring = LedRing("rgb", RGB_PINS, active_high=False)
    try:
        ring.show(((255, 0, 0),))
        assert levels(factory, RGB_PINS) == (0.0, 1.0, 1.0)
    finally:
        ring.close()


def test_gpio_ring_drives_one_pwm_led_per_pin_by_luminance(factory: MockFactory):
    pins = (5, 6, 13)
    ring = LedRing.from_config(LedConfig(kind="gpio", pins=pins))
    try:
        assert ring.count == 3
        ring.show(((255, 255, 255), (255, 0, 0)))  # third pixel missing: dark
        assert levels(factory, pins) == pytest.approx((1.0, luminance((255, 0, 0)), 0.0))
    finally:
        ring.close()


def test_none_ring_has_no_pixels_and_ignores_frames(factory: MockFactory):
    ring = LedRing.from_config(LedConfig())
    ring.show(((255, 0, 0),))
    assert ring.count == 0
    ring.close()


def test_bad_settings_are_refused_and_pins_released(factory: MockFactory):
    with pytest.raises(ValueError, match="3 pins"):
        LedRing("rgb", (17, 27))
    with pytest.raises(ValueError, match="kind"):
        LedRing("ws2812", (10, 11))
    with pytest.raises(GPIOPinInUse):
        LedRing("gpio", (5, 5))
    LedRing("gpio", (5,)).close()  # pin 5 was released by the failed ring


def test_close_turns_the_leds_off(factory: MockFactory):
    ring = LedRing("rgb", RGB_PINS)
    ring.show(((255, 0, 0),))
    ring.close()
    ring.close()
    assert levels(factory, RGB_PINS) == (0.0, 0.0, 0.0)


def test_driver_follows_the_state(factory: MockFactory):
    ring = LedRing("rgb", RGB_PINS)
    driver = LedDriver(ring, hz=100)
    now: dict[str, State] = {"state": State.LISTENING}
    seen: list[tuple[float, ...]] = []

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(driver.run(lambda: (now["state"], 0.0), stop=stop))
        await asyncio.sleep(0.1)
        seen.append(levels(factory, RGB_PINS))
        now["state"] = State.MUTED
        driver.poke()  # as the daemon does on every state change
        await asyncio.sleep(0.1)
        seen.append(levels(factory, RGB_PINS))
        stop.set()
        await asyncio.wait_for(task, 1)

    try:
        asyncio.run(go())
    finally:
        ring.close()
    assert seen[0] == pytest.approx((0.0, 200 / 255, 1.0))  # cyan
    assert seen[1] == (1.0, 0.0, 0.0)  # red
    assert driver.last_colours == ((255, 0, 0),)
    assert driver.frames == 2 and driver.errors == 0  # two solid states: two frames shown


def test_a_still_pattern_is_drawn_once_and_the_driver_sleeps(factory: MockFactory):
    """Idle, listening and muted stand still: no redraw and no wake-up until the state
    changes; a blink wakes at its edges only."""
    ring = LedRing("rgb", RGB_PINS)
    driver = LedDriver(ring, hz=100)
    now: dict[str, State] = {"state": State.IDLE}
    asked = {"n": 0}

    def get_state() -> tuple[State, float]:
        asked["n"] += 1
        return now["state"], 0.0

    async def go() -> tuple[int, int]:
        stop = asyncio.Event()
        task = asyncio.create_task(driver.run(get_state, stop=stop))
        await asyncio.sleep(0.5)  # at 100 Hz a ticking driver would ask 50 times
        still = asked["n"]
        now["state"] = State.ERROR  # red blink, 0.25 s on and 0.25 s off
        driver.poke()
        await asyncio.sleep(1.1)
        blinking = asked["n"] - still
        stop.set()
        await asyncio.wait_for(task, 1)
        return still, blinking

    try:
        still, blinking = asyncio.run(go())
    finally:
        ring.close()
    assert still == 1, f"the driver woke {still} times in a still state"
    assert 4 <= blinking <= 7, f"{blinking} wake-ups for about four blink edges"


def test_driver_survives_a_failing_state_source(factory: MockFactory, caplog):
    ring = LedRing("gpio", (5,))
    driver = LedDriver(ring, hz=200)
    calls = {"n": 0}

    def flaky() -> tuple[State, float]:
        calls["n"] += 1
        if calls["n"] % 2:
            raise RuntimeError("state not ready")
        return State.THINKING, 0.0  # a moving pattern: the driver keeps drawing

    async def go() -> None:
        task = asyncio.create_task(driver.run(flaky))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(go())
    finally:
        ring.close()
    assert driver.errors > 2 and driver.frames > 2
    assert sum("LED frame failed" in r.getMessage() for r in caplog.records) == 1


def test_blink_starts_lit_when_the_state_begins(factory: MockFactory):
    ring = LedRing("rgb", RGB_PINS)
    driver = LedDriver(ring)
    try:
        # The clock is far from any blink boundary, yet a fresh ERROR state starts lit.
        assert driver.frame(State.ERROR, 0.0, 1000.3) == ((255, 0, 0),)
        assert driver.frame(State.ERROR, 0.0, 1000.3 + 0.3) == ((0, 0, 0),)
    finally:
        ring.close()


def test_speaking_level_rises_at_once_and_falls_smoothly(factory: MockFactory):
    ring = LedRing("rgb", RGB_PINS)
    driver = LedDriver(ring)
    try:
        loud = driver.frame(State.SPEAKING, 1.0, 10.0)[0]
        after = driver.frame(State.SPEAKING, 0.0, 10.05)[0]
        later = driver.frame(State.SPEAKING, 0.0, 11.0)[0]
        assert sum(loud) > sum(after) > sum(later) > 0
    finally:
        ring.close()


def test_apa102_ring_gets_the_pattern_over_spi() -> None:
    """The ReSpeaker ring: real gpiozero SPI (software, on mock pins) into a mock APA102
    chain that decodes the frames it is clocked."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockSPIDevice

    from pivox.core.leds import pattern
    from pivox.core.machine import State
    from pivox.hw.gpio import LedRing

    class Chain(MockSPIDevice):
        def on_start(self) -> None:
            super().on_start()

        def words(self) -> list[int]:
            bits = self.rx_buf
            return [int("".join("1" if b else "0" for b in bits[i : i + 8]), 2)
                    for i in range(0, len(bits) - 7, 8)]

    Device.pin_factory = MockFactory()
    try:
        chain = Chain(11, 10, 9, 8)  # SPI0: SCLK, MOSI, MISO, CE0
        ring = LedRing("apa102", count=12, brightness=10)
        colours = pattern(State.MUTED, 0.0, 0.0, 12)
        ring.show(colours)
        w = chain.words()
        assert w[:4] == [0, 0, 0, 0]  # start frame
        pixels = [w[4 + 4 * i : 8 + 4 * i] for i in range(12)]
        assert pixels == [[0xE0 | 10, b, g, r] for r, g, b in colours]
        assert all(p[3] > 200 and p[1] == p[2] == 0 for p in pixels)  # muted is red
        assert w[52:] == [0xFF]  # end frame
        ring.close()
        chain.close()
    finally:
        Device.pin_factory.reset()
        Device.pin_factory.close()
        Device.pin_factory = None
