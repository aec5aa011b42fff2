"""The live display at any channel count: every channel and the counters on an 80x24 terminal, short plain lines.

On a terminal (tmux: a real terminal of a known size, read back with
``capture-pane``) ``audioring meter`` shows every channel number and the
overflows line of 64 channels of the virtual input and 128 of a JACK
server; resized, it lays the channels out again. Not on a terminal, each
line stays under 160 characters at 1, 2, 64 and 256 channels and says
which channels clipped or are silent.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
import uuid

import numpy as np
import pytest
from rich.console import Console

from audioring.cli.display import PlainDisplay
from audioring.cli.levels import CLIP_DB, METER_FLOOR_DB
from audioring.cli.meter_view import LiveMeter, choose_layout
from test_cli import CLI, no_device_environment, run_cli, summary

#: A grid cell: a channel number, then its bar (eighths of a character, dots, or a block's height).
CELL = re.compile(r"(\d+)([▁▂▃▄▅▆▇█▏▎▍▌▋▊▉·]+)")


def channels_on(screen: str) -> dict[int, str]:
    """Each channel number on ``screen`` (grid cells and ``ch N`` rows) and its bar."""
    cells = {int(number): bar for number, bar in CELL.findall(screen)}
    cells.update({int(number): bar for number, bar in re.findall(r"ch +(\d+) ([█▏▎▍▌▋▊▉·]+)", screen)})
    return cells


class Tmux:
    """A private tmux server (its own socket) running one command in a window of a given size."""

    def __init__(self, command: list[str], env: dict, width: int, height: int) -> None:
        if shutil.which("tmux") is None:
            pytest.skip("tmux is not installed (Debian: apt-get install tmux)")
        self.socket = f"audioring-test-{uuid.uuid4().hex[:8]}"
        # COLUMNS and LINES would override the terminal's size in rich: the pane's own size is tested.
        env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES", "TMUX")}
        self.env = env
        # -f /dev/null: none of the machine's tmux configuration; no status line: the window is the pane.
        self.tmux("-f", "/dev/null", "new-session", "-d", "-x", str(width), "-y", str(height), "-s", "meter",
                  " ".join(command), ";", "set-option", "-g", "status", "off", ";",
                  "set-option", "-g", "remain-on-exit", "on")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], env=self.env, capture_output=True,
                              text=True, check=True, timeout=30).stdout

    def size(self) -> tuple[int, int]:
        width, height = self.tmux("display-message", "-p", "#{pane_width} #{pane_height}").split()
        return int(width), int(height)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_for(self, condition, timeout: float = 30) -> str:
        """The screen once ``condition(screen)`` holds (fails with the last screen after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            assert time.monotonic() < deadline, f"not on the screen in {timeout} s:\n{screen}"
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env, capture_output=True, timeout=30)


def every_channel(channels: int, width: int):
    """A screen condition: the counters, the progress past 1 s, and each channel once, in ``width`` columns."""
    def shown(screen: str) -> bool:
        clock = re.search(r"(\d+\.\d) s", screen)
        return ("overflows 0   frames lost 0" in screen and clock is not None and float(clock.group(1)) >= 1.0
                and sorted(channels_on(screen)) == list(range(1, channels + 1))
                and max(len(line) for line in screen.splitlines()) <= width)
    return shown


def meter_on_a_terminal(device: str, channels: int, env: dict, width: int = 80, height: int = 24) -> Tmux:
    terminal = Tmux([*CLI, "meter", "-d", device, "-c", str(channels), "--seconds", "60"], env, width, height)
    assert terminal.size() == (width, height)
    return terminal


def test_64_virtual_channels_fit_80x24_and_follow_a_resize(tmp_path):
    terminal = meter_on_a_terminal("virtual", 64, no_device_environment(tmp_path))
    try:
        screen = terminal.wait_for(every_channel(64, 80))
        lines = screen.splitlines()
        counters = next(i for i, line in enumerate(lines) if "overflows 0   frames lost 0" in line)
        assert "● METER virtual" in lines[counters - 1], screen  # the progress line, then the counters
        cells = channels_on(screen)
        # The virtual sine's amplitude 0.5 is -6 dBFS: each bar full to 90 %, none clipped or silent.
        assert all(bar.startswith("█") and "·" not in bar for bar in cells.values()), screen
        assert re.search(r"^since start: min -6\.0, median -6\.0, max -6\.0$", screen, flags=re.M), screen
        assert "Traceback" not in screen and "do not fit" not in screen

        terminal.tmux("resize-window", "-t", "meter", "-x", "60", "-y", "20")
        assert terminal.size() == (60, 20)
        screen = terminal.wait_for(every_channel(64, 60))
        assert "overflows 0   frames lost 0" in screen
    finally:
        terminal.close()


@pytest.mark.audio_server
def test_128_jack_channels_fit_80x24(jack_server_factory):
    server = jack_server_factory(48000, 1024, 128)
    terminal = meter_on_a_terminal("system", 128, {**os.environ, **server.env})
    try:
        screen = terminal.wait_for(every_channel(128, 80))
        assert "● METER 'system' (JACK" in screen, screen
        # Nothing plays into the server: every channel is digital silence, and said so.
        assert "since start: min -inf, median -inf, max -inf, silent 1-128" in screen
        assert set("".join(channels_on(screen).values())) == {"·"}, screen
        assert "Traceback" not in screen and "do not fit" not in screen
    finally:
        terminal.close()


# ---- the layout, at any size -------------------------------------------------------------------


def render(meter: LiveMeter, width: int, height: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, height=height, color_system=None, legacy_windows=False).print(meter)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width, height", [(80, 24), (120, 40), (60, 20), (200, 60)])
@pytest.mark.parametrize("channels", [1, 2, 8, 21, 22, 32, 64, 100, 128, 256])
def test_every_channel_fits_below_the_counters(channels, width, height):
    meter = LiveMeter("● METER test", channels)
    meter.shown = meter.held = np.linspace(-70, 0, channels)
    meter.counters = "overflows 2   frames lost 480"
    lines = render(meter, width, height)
    assert len(lines) < height, "the last line would scroll the screen"
    assert lines[:2] == ["● METER test", "overflows 2   frames lost 480"]
    assert max(len(line) for line in lines) <= width
    # Only 256 channels in 60x20 do not fit: one-character cells, 12 to a line, need 22 lines; 17 are free.
    hidden = choose_layout(channels, width, height).hidden
    assert (hidden > 0) == ((channels, width, height) == (256, 60, 20))
    assert sorted(channels_on("\n".join(lines))) == list(range(1, channels - hidden + 1))
    if hidden:
        assert lines[-1] == f"channels {channels - hidden + 1}-{channels} do not fit in 60x20: enlarge the terminal"


def test_a_terminal_too_small_says_which_channels_are_not_shown():
    meter = LiveMeter("● METER test", 600)
    meter.counters = "overflows 0   frames lost 0"
    lines = render(meter, 80, 24)
    layout = choose_layout(600, 80, 24)
    shown = layout.columns * layout.lines
    assert len(lines) < 24 and lines[1].startswith("overflows")
    assert sorted(channels_on("\n".join(lines))) == list(range(1, shown + 1))
    assert lines[-1] == f"channels {shown + 1}-600 do not fit in 80x24: enlarge the terminal"


def test_grid_cells_show_level_clipping_and_silence():
    meter = LiveMeter("● METER test", 64)
    levels = np.full(64, -30.0)
    levels[[4, 5, 6]] = 0.0  # clipped
    levels[40:] = -np.inf  # silent
    meter.shown = meter.held = levels
    out = io.StringIO()
    Console(file=out, width=80, height=24, color_system="truecolor", force_terminal=True).print(meter)
    styled = out.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*m", "", styled)
    assert "since start: min -inf, median -30.0, max 0.0, clipped 5-7, silent 41-64" in plain
    cells = channels_on(plain)
    assert cells[5] == cells[6] == "███████" and cells[41] == "·······" and cells[1] == "███▌···"
    # A clipped channel's number is white on red; a silent one's dim.
    assert re.search(r"\x1b\[1;97;41m 5\x1b\[0m", styled) or re.search(r"\x1b\[[0-9;]*41m 5", styled), styled
    assert re.search(r"\x1b\[2m41\x1b\[0m", styled), styled


# ---- not a terminal: one short line a second ----------------------------------------------------


def expand(ranges: str) -> list[int]:
    """``3-7,12`` as channel numbers."""
    numbers: list[int] = []
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        numbers.extend(range(int(first), int(last or first) + 1))
    return numbers


def listed(label: str, text: str, truth: np.ndarray) -> None:
    """``text`` (empty, ``clipped 3-7,12``, ``clipped 3-7… 40 ch`` or ``40 clipped``) names the channels ``truth``."""
    expected = [int(i) + 1 for i in truth]
    if not text:
        assert expected == []
    elif (cut := re.fullmatch(rf"{label} (.+)… (\d+) ch", text)) is not None:
        shown = expand(cut.group(1))
        assert int(cut.group(2)) == len(expected) and shown == expected[: len(shown)] and len(shown) < len(expected)
    elif (count := re.fullmatch(rf"(\d+) {label}", text)) is not None:
        assert int(count.group(1)) == len(expected)
    else:
        assert text.startswith(f"{label} ") and expand(text.split(" ", 1)[1]) == expected


@pytest.mark.parametrize("channels", [1, 2, 64, 256])
@pytest.mark.parametrize("pattern", ["alternate", "blocks", "quiet"])
def test_plain_lines_stay_short_and_name_clipped_and_silent_channels(channels, pattern):
    rng = np.random.default_rng(channels)
    if pattern == "alternate":  # the longest lists: every other channel clipped, every third silent
        amplitude = np.where(np.arange(channels) % 2 == 0, 1.0, 0.25)
        amplitude[::3] = 0.0
    elif pattern == "blocks":
        amplitude = np.full(channels, 0.5)
        amplitude[channels // 4: channels // 2] = 1.0
        amplitude[channels // 2:] = 0.0
    else:
        amplitude = rng.uniform(0.01, 0.5, channels)
    block = (np.sin(np.linspace(0, 20 * np.pi, 4800))[:, None] * amplitude).astype(np.float32)
    block[100] = amplitude  # the sine's peak exactly: 1.0 is full scale
    stream = io.StringIO()
    display = PlainDisplay("METER virtual", channels, 48000, 480000, stream=stream, interval=0)
    display.update(48000, block, overflows=3, lost=4800, lag=2400)
    line = stream.getvalue()
    assert line.count("\n") == 1 and len(line) - 1 < 160, line
    head = re.fullmatch(r"audioring: METER virtual: 1\.0 of 10\.0 s, peak dBFS (.*), overflows 3, frames lost 4800, "
                        r"writer lag 0\.05 s\n", line)
    assert head is not None, line
    with np.errstate(divide="ignore"):
        truth = 20 * np.log10(amplitude)
    if channels <= 2:  # every peak, as before
        assert head.group(1) == ", ".join(f"{level:.1f}" for level in truth)
        return
    summed = re.fullmatch(r"min (\S+), median (\S+), max ([^,]+)(?:, ([^,]*clipped[^,]*))?(?:, ([^,]*silent[^,]*))?",
                          head.group(1))
    assert summed is not None, line
    assert summed.group(1, 2, 3) == tuple(f"{v:.1f}" for v in (truth.min(), np.median(truth), truth.max()))
    listed("clipped", summed.group(4) or "", np.flatnonzero(truth >= CLIP_DB))
    listed("silent", summed.group(5) or "", np.flatnonzero(~(truth >= METER_FLOOR_DB)))


def test_meter_not_on_a_terminal_prints_short_lines_and_a_short_summary(tmp_path):
    result = run_cli("meter", "-d", "virtual", "-c", "64", "--seconds", "2.5", env=no_device_environment(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("audioring: METER virtual")]
    assert len(lines) == 2, result.stderr
    for line in lines:
        assert len(line) < 160, line
        assert line.endswith("s, peak dBFS min -6.0, median -6.0, max -6.0, overflows 0, frames lost 0"), line
    assert summary(result.stdout)["peak dBFS"] == "min -6.0, median -6.0, max -6.0"
    assert summary(result.stdout)["frames"] == "120000"
