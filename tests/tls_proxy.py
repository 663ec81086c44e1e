#!/usr/bin/env python3
"""A TLS-terminating TCP proxy for the broker tests (tests/kafka_tls.rs).

tansu 0.6.0 cannot serve TLS itself (its --cert and --key flags exclude each other), so the
test puts this in front of a plain tansu: clients talk TLS to --listen, the proxy forwards the
plain bytes to --upstream on 127.0.0.1. Prints "ready" once listening; exits when its standard
input closes (its parent died or closed it) or on SIGTERM.

Usage: tls_proxy.py --listen PORT --upstream PORT --cert FILE --key FILE
"""

import argparse
import asyncio
import signal
import ssl
import sys
import threading


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args()

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", args.upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", args.listen, ssl=ctx)
    print("ready", flush=True)

    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_signal_handler(signal.SIGTERM, finish)
    loop.add_signal_handler(signal.SIGINT, finish)

    def watch_stdin() -> None:
        # Blocks until the parent closes our standard input (or dies).
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(finish)

    threading.Thread(target=watch_stdin, daemon=True).start()
    async with server:
        await done
    server.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
