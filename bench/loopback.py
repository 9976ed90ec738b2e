#!/usr/bin/env python3
"""A trivial HTTP/1.1 server that answers from memory without looking at anything: the
loopback ceiling of the side-by-side benchmark. What bench/rawhttp.py reaches against it
(small answers per second, bulk bytes per second each way) is what no real server can beat
with that client on this machine.

    GET /small?n=N   N bytes of JSON-ish body (the size of an /api/info answer)
    GET /bulk?n=N    N bytes
    POST (anything)  reads the content-length body, answers "{}"

Usage: loopback.py PORT   (runs until terminated)
"""

import asyncio
import functools
import sys

from rawhttp import run

BLOCK = b"\0" * (4 << 20)


class Sink(asyncio.Protocol):
    """One connection: parses request heads, answers GETs, swallows POST bodies."""

    def connection_made(self, transport):
        self.transport, self.buf, self.to_skip = transport, bytearray(), 0
        self.paused, self.resumed = False, None

    def pause_writing(self):
        self.paused = True
        self.resumed = asyncio.get_running_loop().create_future()

    def resume_writing(self):
        self.paused = False
        self.resumed.set_result(None)

    def data_received(self, data):
        if self.to_skip:
            used = min(self.to_skip, len(data))
            self.to_skip -= used
            data = data[used:]
            if not self.to_skip:
                self.transport.write(answer(b"{}"))
        self.buf += data
        while not self.to_skip and b"\r\n\r\n" in self.buf:
            end = self.buf.index(b"\r\n\r\n") + 4
            head = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[:end]
            self.handle(head)

    def handle(self, head):
        method, target = head.split(" ", 2)[:2]
        if method == "POST":
            length = next(int(line.split(":", 1)[1]) for line in head.split("\r\n")
                          if line.lower().startswith("content-length:"))
            used = min(length, len(self.buf))
            del self.buf[:used]
            self.to_skip = length - used
            if not self.to_skip:
                self.transport.write(answer(b"{}"))
            return
        n = int(target.split("n=", 1)[1]) if "n=" in target else 0
        if target.startswith("/bulk"):
            asyncio.ensure_future(self.send_bulk(n))
        else:
            self.transport.write(small(n))

    async def send_bulk(self, n):
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
        view = memoryview(BLOCK)
        while n > 0:
            if self.paused:
                await self.resumed
            k = min(n, len(BLOCK))
            self.transport.write(view[:k])
            n -= k


@functools.lru_cache(maxsize=8)
def small(n):
    return answer(b"x" * n)


def answer(body):
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def serve(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    run(serve(int(sys.argv[1])))
