"""Real audio servers for testing audio capture on machines without a sound card.

CI machines have no sound card, so capture code is usually tested against a
mock, never through a real audio stack. This module starts private audio
servers whose devices PortAudio (hence ``sounddevice`` and audioring) sees
like a sound card's, and feeds them known signals:

* :class:`PulseServer`: a PulseAudio daemon with a null sink. PortAudio's ALSA
  host API shows it as the devices ``pulse`` and ``default``; whatever is
  played into the sink (:meth:`PulseServer.play`) is captured from its
  monitor.
* :class:`JackServer`: a ``jackd`` with the dummy driver. PortAudio's JACK
  host API shows it as the device ``system``;
  :meth:`JackServer.inject_tones` connects a tone generator
  (:class:`Injector`) to a recorder's input ports. ``JackServer(...,
  clock_error_ppm=200)`` runs its clock 200 ppm fast (jackd under
  libfaketime), a device whose crystal is off, for testing clock drift.
* :func:`tone`, :func:`dominant_frequency`: a distinct sine per channel, and
  the frequency that arrived per channel.
* :func:`fit_rate`: a device's real rate from (callback time, frame count)
  pairs; :func:`analyze_tone`: a recorded tone's frequency error in ppm,
  phase wander in samples and SNR.

Both servers are private (own socket, name and directory: a desktop's audio
is never touched), are context managers, and export the variables that
select them (``PULSE_SERVER``, ``JACK_DEFAULT_SERVER``) into ``os.environ``
while running. PortAudio lists devices only when it initializes: call
:func:`refresh_portaudio` after starting or stopping a server, while no
stream is open.

Nothing is installed by this module: the servers need the programs of the
Debian/Ubuntu packages listed in ``debian-packages.txt`` beside this file
(``pulseaudio pulseaudio-utils libasound2-plugins jackd2``; ``faketime`` for
a JACK server with a clock error), and tone
injection the Python package JACK-Client (``pip install
'audioring[testing]'``). When something is missing, starting a server raises
:class:`AudioServerUnavailable`, saying what to install.

pytest
------
Installing audioring registers the pytest plugin
:mod:`audioring.testing.pytest_plugin` (fixtures ``pulse_server``,
``pulse_server_factory``, ``jack_server_factory``; marker ``audio_server``).
A server that cannot start skips the test, but fails it under ``CI=true`` or
``--audio-servers=require``.

Shell
-----
``python -m audioring.testing pulse|jack|stop`` starts a server and prints
``export`` lines (``eval "$(python -m audioring.testing pulse)"``);
``python -m audioring.testing play pulse|jack --freqs 440 880`` (or
``--file take.wav``) plays into it until Ctrl-C or for ``--seconds``.

Public names
------------
PulseServer, Player
    The PulseAudio server and a signal playing into it.
JackServer, Injector
    The JACK server and a tone generator connected to a recorder.
AudioServerError, AudioServerUnavailable
    A server failed; a program or module it needs is not installed.
tone, dominant_frequency, alsa_channel_map
    Test signals, their analysis, PulseAudio's ALSA channel order.
fit_rate, RateFit, analyze_tone, ToneAnalysis
    A device's rate measured from its callbacks' times; a recorded tone's
    frequency error, phase wander and SNR.
refresh_portaudio
    Make PortAudio re-scan devices and servers.
"""

from ._drift import RateFit, ToneAnalysis, analyze_tone, fit_rate
from ._errors import AudioServerError, AudioServerUnavailable
from ._jack import Injector, JackServer
from ._portaudio import refresh_portaudio
from ._pulse import Player, PulseServer
from ._signals import alsa_channel_map, dominant_frequency, tone

__all__ = [
    "AudioServerError",
    "AudioServerUnavailable",
    "Injector",
    "JackServer",
    "Player",
    "PulseServer",
    "RateFit",
    "ToneAnalysis",
    "alsa_channel_map",
    "analyze_tone",
    "dominant_frequency",
    "fit_rate",
    "refresh_portaudio",
    "tone",
]
