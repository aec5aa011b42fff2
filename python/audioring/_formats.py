"""The sample formats: PortAudio's, so the only ones a ring stores.

The table itself is native (``csrc/audioring/sample_format.hpp``); this module
only gives Python its names.
"""

from __future__ import annotations

from . import _core

#: numpy names of the sample formats, in PortAudio's order of preference.
SAMPLE_DTYPES: tuple[str, ...] = tuple(_core.SampleFormat.__members__)


def sample_format(name: str) -> _core.SampleFormat:
    """The native format of a dtype name that `audioring._validate.as_sample_dtype` accepted."""
    return _core.SampleFormat.__members__[name]
