"""Real audio servers for testing capture code on machines without a sound card."""

from ._servers import (
    AudioServerError,
    Injector,
    JackServer,
    Player,
    PulseServer,
    alsa_channel_map,
    dominant_frequency,
    refresh_portaudio,
    tone,
)

__all__ = [
    "AudioServerError",
    "Injector",
    "JackServer",
    "Player",
    "PulseServer",
    "alsa_channel_map",
    "dominant_frequency",
    "refresh_portaudio",
    "tone",
]
