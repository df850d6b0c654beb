"""Board profiles: each gives a valid pivox.toml, an ALSA config libasound accepts, and
the config.txt lines; each says where its facts come from."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pivox import config
from pivox.boards import board_config_toml, list_boards, load_board

REQUIRED = {"respeaker-2mic", "respeaker-4mic", "respeaker-usb-v2", "usb-mic-max98357a",
            "aiy-voice-hat"}


def test_the_supported_boards_are_all_there() -> None:
    assert set(list_boards()) >= REQUIRED


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_profile_renders_a_valid_config(name: str) -> None:
    board = load_board(name)
    assert board.sources and board.description
    cfg = config.parse(board_config_toml(board), f"{name}.toml")
    assert cfg.audio.capture.device == "pivox_mic"
    assert cfg.audio.playback.device == "pivox_spk"
    assert board.boot_lines.is_file()


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_alsa_config_is_accepted_by_libasound(name: str) -> None:
    """libasound parses the fragment and lists both PCMs by name."""
    conf = load_board(name).alsa_conf
    env = {**os.environ, "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{conf}"}
    out = subprocess.run([sys.executable, "-c", "import alsaaudio; print(alsaaudio.pcms())"],
                         env=env, capture_output=True, text=True, timeout=30, check=True)
    assert "pivox_mic" in out.stdout and "pivox_spk" in out.stdout, out.stdout + out.stderr


def test_unknown_board_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="respeaker-2mic"):
        load_board("respeaker-9mic")
