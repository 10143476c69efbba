"""A PyBackend (sbtest) in a process of its own that prints the CLOCK_MONOTONIC time of
every WebSocket connection it accepts, so that a test can kill it for real (SIGKILL: the
kernel resets its connections, as a crashed server's) and bound the accept rate of the
others in every sliding window. time.monotonic() is CLOCK_MONOTONIC, one clock for every
process of the machine.

    python3 accept_backend.py NAME   -> "listening 127.0.0.1:PORT", then "accept T" lines
"""

import signal
import sys
import time

from sbtest import PyBackend


def main():
    name = sys.argv[1]
    backend = None

    async def handler(ws, path):
        print(f"accept {time.monotonic():.6f}", flush=True)
        await backend._transform_echo(ws, path)

    backend = PyBackend(name, handler=handler, subprotocols=["chat.v1"])
    print(f"listening {backend.address}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
