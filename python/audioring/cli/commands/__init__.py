"""The commands, in the order ``audioring --help`` lists them.

Each module here defines one command as ``COMMAND`` (a `Command`): adding a
command is adding its module and its line below.
"""

from __future__ import annotations

from ..parser import Command
from . import devices, doctor, meter, record, serve

COMMANDS: tuple[Command, ...] = (devices.COMMAND, record.COMMAND, meter.COMMAND, serve.COMMAND, doctor.COMMAND)
