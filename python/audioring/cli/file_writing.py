"""``record``'s loop: the native writer writes the file; this loop shows levels and lag, and stops on a signal.

The frames never pass through Python: ``record_to``'s thread drains the ring
into libsndfile. The loop only looks, ten times a second, at the newest
frames (for the meter), at the writer's progress and lag, and at whether the
device still delivers; Ctrl-C or SIGTERM ends the recording with everything
recorded until then written and the file complete.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Optional, TextIO

from .. import FileWriter, Gap, SharedRecording
from .capture import NO_AUDIO_TIMEOUT, Recording, StopOnSignal
from .device_lines import device_lines
from .display import Display, make_display, notice
from .levels import summary_peaks
from .output import Target

#: Seconds between looks at the writer and the newest frames.
TICK_SECONDS = 0.1


@dataclasses.dataclass(frozen=True)
class WriteResult:
    """How a recording to a file went.

    Attributes
    ----------
    frames : int
        Frames in the file (or the split parts), gaps' silence included.
    gaps : list of Gap
        Frames lost before the writer took them, written as silence of their length.
    overflows : int
        Input overflows the recorder counted meanwhile: audio dropped before it reached the ring.
    peak_dbfs : tuple of float
        Each channel's peak over the frames the meter looked at, in dBFS.
    failure : str or None
        Why the recording ended early (the device, the disk, a dead producer), or None.
    files : list of str
        The files written.
    devices : tuple of str
        For several devices, a line on each (`device_lines`).
    """

    frames: int
    gaps: list[Gap]
    overflows: int
    peak_dbfs: tuple[float, ...]
    failure: Optional[str]
    files: list[str]
    devices: tuple[str, ...] = ()

    @property
    def frames_lost(self) -> int:
        """Frames written as silence because they were lost."""
        return sum(gap.length for gap in self.gaps)


def write_until_done(rec: Recording, writer: FileWriter, target: Target, title: str, total: Optional[int],
                     overflows_before: int) -> WriteResult:
    """Watch ``writer`` until it ends (``total`` frames, the producer stopped), Ctrl-C or SIGTERM; close both.

    ``overflows_before``: the recorder's overflow count when the file began
    (a shared recording's counters run from its producer's start).
    """
    rate = rec.sampling_rate
    display = make_display(title, rec.channels, rate, total)
    failure: Optional[str] = None
    seen = writer.start  # the newest frame the meter looked at
    progress = (rec.frames_written, time.monotonic())  # when frames last arrived
    try:
        with StopOnSignal() as stop:
            while not stop.requested and not writer.wait(TICK_SECONDS):
                written = rec.frames_written
                if written != progress[0]:
                    progress = (written, time.monotonic())
                elif time.monotonic() - progress[1] > NO_AUDIO_TIMEOUT and not isinstance(rec, SharedRecording):
                    failure = f"no audio from {rec.device!r} for {NO_AUDIO_TIMEOUT:g} s (did the device go away?)"
                    break
                seen = _meter(rec, writer, display, seen, rec.overflows - overflows_before)
        writer.finish()
        writer.wait()
        _meter(rec, writer, display, seen, rec.overflows - overflows_before, final=True)  # the end, as it is
    finally:
        display.close()
        writer.finish()
        writer.wait()
        overflows = rec.overflows - overflows_before
        devices = device_lines(rec)
        rec.close()
    failure = failure or _ending(rec, writer, target)
    peaks = tuple(float(level) for level in display.levels.max)
    return WriteResult(writer.frames, writer.gaps, overflows, peaks, failure, writer.files, devices)


def _meter(rec: Recording, writer: FileWriter, display: Display, seen: int, overflows: int,
           final: bool = False) -> int:
    """Show the frames recorded since ``seen`` (at most a second of them); return the newest frame shown.

    ``final``: show the writer's last state even if no frame came since (with the newest frame again).
    """
    written = rec.frames_written
    count = min(written - seen, rec.sampling_rate, rec.buffer_size)
    if count <= 0 and not (final and written > 0):
        return seen
    count = max(count, 1)
    view = rec.read(count)
    if rec.is_intact(view):
        display.update(writer.frames, view, overflows, writer.frames_lost, lag=writer.lag)
    return written


def _ending(rec: Recording, writer: FileWriter, target: Target) -> Optional[str]:
    """Why the writer ended early, or None for an end in order (announced if it needs saying)."""
    if writer.end == "error":
        if target.reader_gone():  # the OS only says "Broken pipe"
            return f"cannot write {target.name}: its reader closed the pipe"
        return f"{writer.error}; {writer.frames} frames saved"
    if writer.end == "producer_lost" and isinstance(rec, SharedRecording):
        return rec._producer_died
    if writer.end == "producer_stopped" and isinstance(rec, SharedRecording):
        notice(f"the producer of {rec.name!r} stopped recording: the recording ends here")
    elif writer.end == "restarted":
        notice("the producer restarted its recording: the file ends with the recording it had begun")
    return None


def print_summary(result: WriteResult, rate: int, gap_log: Optional[str], file: Optional[TextIO] = None) -> None:
    """The closing lines: frames written, duration, overflows, frames lost, the gaps, peak levels."""
    file = file or sys.stdout
    print(f"frames written: {result.frames}", file=file)
    print(f"duration: {result.frames / rate:.3f} s", file=file)
    print(f"overflows: {result.overflows}", file=file)
    print(f"frames lost: {result.frames_lost}", file=file)
    if result.gaps:
        listed = "" if gap_log is None else f" (also in {gap_log})"
        shown = ", ".join(f"{gap.length} frames at frame {gap.frame} ({gap.seconds:.3f} s)" for gap in result.gaps[:5])
        more = f", and {len(result.gaps) - 5} more" if len(result.gaps) > 5 else ""
        print(f"gaps: {len(result.gaps)}: {shown}{more}{listed}", file=file)
    print(f"peak dBFS: {summary_peaks(result.peak_dbfs)}", file=file)
    for line in result.devices:
        print(line, file=file)
