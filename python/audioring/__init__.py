"""audioring: real-time audio capture with a lock-free native ring buffer.

Public names
------------
Ring
    A lock-free single-producer ring of audio frames with zero-copy reads.
OverrunError
    A lossless consumer fell so far behind that frames were overwritten.
__version__
    The package version.
"""

try:
    from . import _core
except ImportError as error:  # pragma: no cover - only on a broken install
    raise ImportError(
        "audioring's compiled module audioring._core could not be imported. "
        "Reinstall audioring (`pip install --force-reinstall audioring`); "
        "building from source needs a C++17 compiler."
    ) from error

from ._errors import OverrunError
from ._ring import Ring

__version__: str = _core.__version__

__all__ = ["OverrunError", "Ring", "__version__"]
