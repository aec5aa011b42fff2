"""The ``audioring`` command line (``python -m audioring``): devices, record, meter, doctor.

Only `main` is public. Exit status: 0 on success, including a recording or
meter ended with Ctrl-C (SIGINT) or SIGTERM, or by the orderly end of the
recording ``--from`` reads; 1 when something fails while running (the
output cannot be written or its reader closed the pipe, PortAudio is
missing for a named device, a device fails or stops delivering, a
``--from`` producer dies, no usable input device with ``--no-fallback``;
`doctor`: a problem found); 2 for bad arguments, an unknown ``--device``
and a ``--from`` name nothing is shared under among them (reported in two
lines: the error, then where the usage is); 3 when ``record`` lost frames;
130 when a second Ctrl-C aborts.

Modules
-------
dispatch
    `main`: parses the command line, runs the command, maps failures to the exit status.
parser
    `Command` (one command's help, arguments and run function) and the parser built from them.
commands
    One module per command (``devices``, ``record``, ``meter``, ``doctor``) and the list of them.
options
    Options and argument types several commands share (the capture options).
inputs
    Which input to capture from: a PortAudio device, the virtual input, or the fallback.
capture
    Streaming a started recorder until done, Ctrl-C or SIGTERM; the closing summary.
output
    The output: format, subtype per sample format, size limits, where it goes (a file, stdout, a FIFO).
display
    What is shown on stderr: notices, and the live display (rich or plain lines).
levels
    Peak levels per channel, and their text at any channel count (one line, clipped and silent ranges).
meter_view
    The live meter on a terminal: every channel laid out for the terminal's size (imports rich).
errors
    `UsageError` (exit status 2) and `CliError` (exit status 1).

Importing this package (and ``--help``) loads neither sounddevice, soundfile
nor rich: each is imported where a command first needs it.
"""

from __future__ import annotations

from .dispatch import main

__all__ = ["main"]
