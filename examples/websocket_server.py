#!/usr/bin/env python3
"""Stream 16 kHz int16 mono PCM to every websocket client (asyncio, the ``websockets`` package).

Each client gets its own lossless stream (``AudioRecord.astream``) from the
moment it connects: first a JSON text message (``rate``, ``channels``,
``dtype``, and ``first_frame``, the number of its first frame counted from the
start of the recording), then binary messages of 20 ms of little-endian int16
frames: every frame exactly once, in order. A client so slow that the
recorder's ring (1 s + 1 s of headroom) laps it is disconnected (the stream's
`OverrunError` ends its handler) rather than sent a gap. Waiting clients cost
nothing: one event loop, no thread per client::

    python examples/websocket_server.py --port 8765
    python examples/websocket_client.py ws://localhost:8765 take.wav --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json

import websockets

from _device import DEVICE_HELP, device
from audioring import AudioRecord

RATE = 16000
BLOCK = 320  # 20 ms


async def serve(args: argparse.Namespace) -> None:
    with AudioRecord(1, RATE, RATE, dtype="int16", device=args.device) as rec:

        async def send_audio(client) -> None:
            start = rec.frames_written  # this client's first frame: the next one recorded
            header = {"rate": RATE, "channels": 1, "dtype": "int16", "first_frame": start - rec.first_frame}
            await client.send(json.dumps(header))
            try:
                async for block in rec.astream(BLOCK, start=start):
                    await client.send(block.astype("<i2", copy=False).tobytes())
            except websockets.ConnectionClosed:
                pass  # the client left

        async with websockets.serve(send_audio, args.host, args.port) as server:
            port = server.sockets[0].getsockname()[1]
            print(f"serving {rec.device} on ws://{args.host}:{port}", flush=True)
            await (asyncio.sleep(args.seconds) if args.seconds is not None else asyncio.Future())  # serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=device, help=DEVICE_HELP)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=8765, help="0: any free port (printed)")
    parser.add_argument("--seconds", type=float, help="serve this long (default: until Ctrl-C)")
    try:
        asyncio.run(serve(parser.parse_args()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
