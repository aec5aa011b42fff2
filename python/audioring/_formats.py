"""The sample formats: PortAudio's, so the only ones a ring stores."""

from __future__ import annotations

#: numpy names of the sample formats, in PortAudio's order of preference.
SAMPLE_DTYPES = ("float32", "int32", "int16", "int8", "uint8")
