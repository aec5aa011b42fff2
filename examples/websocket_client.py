#!/usr/bin/env python3
"""Save what ``websocket_server.py`` streams into a WAV file.

Prints the server's JSON header, then writes every frame it receives (16-bit
PCM) until ``--seconds`` of audio are in the file (or the server goes away)::

    python examples/websocket_client.py ws://localhost:8765 take.wav --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json

import numpy as np
import soundfile
import websockets


async def receive(url: str, path: str, seconds: float | None) -> int:
    async with websockets.connect(url, max_size=None) as server:
        header = json.loads(await server.recv())
        print(json.dumps(header), flush=True)
        wanted = None if seconds is None else round(seconds * header["rate"])
        saved = 0
        with soundfile.SoundFile(path, "w", header["rate"], header["channels"], "PCM_16") as wav:
            async for message in server:
                frames = np.frombuffer(message, "<i2").reshape(-1, header["channels"])
                if wanted is not None:
                    frames = frames[: wanted - saved]
                wav.write(frames)
                saved += len(frames)
                if saved == wanted:
                    break
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the server, e.g. ws://localhost:8765")
    parser.add_argument("output", help="the WAV file to write")
    parser.add_argument("--seconds", type=float, help="stop after this much audio (default: until the server ends)")
    args = parser.parse_args()
    saved = asyncio.run(receive(args.url, args.output, args.seconds))
    print(f"saved {saved} frames to {args.output}", flush=True)


if __name__ == "__main__":
    main()
