"""Making PortAudio see servers started after it initialized.

PortAudio scans devices once, in ``Pa_Initialize``, and ``sounddevice`` calls
that at import. Devices of a server started later stay invisible (the ALSA
``pulse``/``default`` devices, the JACK device ``system``), and the JACK
server (``JACK_DEFAULT_SERVER``) is chosen only then. :func:`refresh_portaudio`
re-initializes PortAudio; it closes every open stream, so call it only while
no stream is open.

PortAudio's ``Pa_Terminate`` aborts the process (a failed assertion in
``pa_jack.c``) if the JACK server of its client has gone away, so PortAudio
must be terminated *before* a jackd stops (:func:`portaudio_released`).

``sounddevice`` is imported only inside these functions: importing
:mod:`audioring.testing` does not initialize PortAudio.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["portaudio_released", "refresh_portaudio"]


def refresh_portaudio() -> None:
    """Make PortAudio re-scan devices and servers.

    ``sounddevice`` initializes PortAudio once, at import; PortAudio lists the
    ALSA ``pulse``/``default`` devices and connects to a JACK server only
    then. This terminates and re-initializes PortAudio so that servers
    started (or stopped) since are seen. The pytest fixtures call it after
    starting or stopping a server.

    Every open stream is closed by it: call it only while no stream is open.

    Examples
    --------
    >>> import sounddevice
    >>> from audioring.testing import PulseServer, refresh_portaudio
    >>> with PulseServer() as server:              # doctest: +SKIP
    ...     refresh_portaudio()
    ...     print(sounddevice.query_devices("pulse"))
    {'name': 'pulse', ...}
    """
    import sounddevice as sd

    # Private API, stable since sounddevice 0.3: the public module has no
    # way to re-scan.
    sd._terminate()
    sd._initialize()


@contextmanager
def portaudio_released(active: bool) -> Iterator[None]:
    """Terminate PortAudio for the block (if it is loaded, initialized and `active`), initialize it after."""
    sd = sys.modules.get("sounddevice")
    reinit = active and sd is not None and getattr(sd, "_initialized", 0) > 0
    if reinit:
        assert sd is not None
        sd._terminate()
    try:
        yield
    finally:
        if reinit:
            assert sd is not None
            sd._initialize()
