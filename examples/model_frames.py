#!/usr/bin/env python3
"""Feed speech models the exact frames they take, from one recording, losslessly.

silero-vad takes 512-sample float32 frames at 16 kHz, openWakeWord 1280-sample
(80 ms) int16 frames at 16 kHz. One int16 recorder serves both: two asyncio
streams of it (``AudioRecord.astream``) hand each model every frame once, in
order, each in its own frame size, on one event loop. silero-vad gets the
int16 samples scaled to [-1, 1) as float32 (exact).

No model is downloaded here: ``silero_vad()`` and ``wake_word()`` stand in
for the models, and say which call takes the frame. ``--save`` keeps every
frame each model got (a ``.npz`` with ``silero`` and ``openwakeword``)::

    python examples/model_frames.py --seconds 10
    python examples/model_frames.py --device pulse --seconds 5 --save frames.npz
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Callable

import numpy as np

from _device import DEVICE_HELP, device
from audioring import AsyncFrameStream, AudioRecord

RATE = 16000


def silero_vad(frame: np.ndarray) -> float:
    """Stands in for silero-vad: ``model(torch.from_numpy(frame), 16000).item()`` takes exactly this frame."""
    assert frame.shape == (512,) and frame.dtype == np.float32
    return float(np.sqrt(np.mean(np.square(frame))))  # a level, in place of the speech probability


def wake_word(frame: np.ndarray) -> float:
    """Stands in for openWakeWord: ``model.predict(frame)`` takes exactly this frame."""
    assert frame.shape == (1280,) and frame.dtype == np.int16
    return float(np.abs(frame).max()) / 32768  # a peak, in place of the wake-word scores


async def feed(stream: AsyncFrameStream, model: Callable[[np.ndarray], float],
               convert: Callable[[np.ndarray], np.ndarray], kept: list[np.ndarray]) -> None:
    async for block in stream:  # ends when the recorder stops
        frame = convert(block[:, 0])
        model(frame)
        kept.append(frame.copy())  # only for --save and the summary: a model needs no copy


async def record(args: argparse.Namespace) -> dict[str, list[np.ndarray]]:
    kept: dict[str, list[np.ndarray]] = {"silero": [], "openwakeword": []}
    with AudioRecord(1, RATE, RATE, dtype="int16", device=args.device) as rec:
        print(f"listening to {rec.device}", flush=True)
        if args.seconds is not None:
            asyncio.get_running_loop().call_later(args.seconds, rec.stop)  # the streams end then
        await asyncio.gather(
            feed(rec.astream(512, timeout=2.0), silero_vad, lambda x: x.astype(np.float32) / 32768, kept["silero"]),
            feed(rec.astream(1280, timeout=2.0), wake_word, lambda x: x, kept["openwakeword"]),
        )
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=device, help=DEVICE_HELP)
    parser.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    parser.add_argument("--save", help="write every frame each model got to this .npz file")
    args = parser.parse_args()
    try:
        kept = asyncio.run(record(args))
    except KeyboardInterrupt:
        return
    for name, frames in kept.items():
        print(f"{name}: {len(frames)} frames" + (f" of {frames[0].size} {frames[0].dtype}" if frames else ""))
    if args.save:
        np.savez(args.save, **{name: np.array(frames) for name, frames in kept.items()})


if __name__ == "__main__":
    main()
