"""The conversions of the convert case, which its measuring (``cases/convert.py``) and its report
(``reports/convert.py``) both need: what is converted, the rows and methods in table order (their keys
are those of the stored result), the JACK period per rate.

Here, apart from both, so that the report reads the stored result without importing the measuring side.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Conversion:
    channels: int
    in_rate: int
    out_rate: int


CONVERSIONS = (Conversion(1, 48000, 16000), Conversion(2, 44100, 16000), Conversion(32, 192000, 48000))

#: Rows of the JACK table: key -> (recorder, whether it records the output rate: else the device's, no conversion).
ROWS = {
    "audioring": ("audioring", True),
    "sd_soxr": ("sd_soxr", True),
    "sd_scipy": ("sd_scipy", True),
    "capture_only": ("audioring", False),
}
#: The offline methods of part B, in table order.
METHODS = {
    "converter": "audioring's converter (native thread, libsoxr \"high\" = HQ)",
    "soxr_oneshot": "python-soxr one-shot `soxr.resample(..., quality=\"HQ\")`",
    "soxr_stream": "python-soxr `ResampleStream` (HQ), period-sized chunks",
    "poly_blocks": "scipy `resample_poly`, period-sized blocks",
    "poly_oneshot": "scipy `resample_poly`, one-shot",
}


def period_for(rate: int) -> int:
    """JACK period at `rate`: 256 frames up to 48 kHz, scaled above (1024 at 192 kHz)."""
    return 256 * max(1, rate // 48000)


def conversion_text(c: Conversion) -> str:
    return f"{c.in_rate / 1000:g} → {c.out_rate / 1000:g} kHz × {c.channels} ch"
