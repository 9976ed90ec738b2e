"""A small HTTP/1.1 client on an asyncio buffered protocol (uvloop when installed), through
which the side-by-side benchmark makes every timed request.

Why not httpx or asyncio streams: httpx costs more per request than the servers being
compared answer in, and asyncio streams copy every byte three times (0.25 GB/s on the
project machine, where a socket carries 1+ GB/s). Here bodies are received straight into
one buffer of their announced size. Both servers and the loopback ceiling
(bench/loopback.py) are measured through this same code, so its cost is part of every
figure alike, and the ceiling shows how large it is.
"""

import asyncio
import time

try:
    import uvloop
except ImportError:  # the plain asyncio loop works too, only slower
    uvloop = None

CTL_SIZE = 64 << 10
TIMEOUT = 1800  # seconds one answer may take (a full-size compute on the reference takes minutes)


class HttpError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {bytes(body[:300]).decode('utf-8', 'replace').strip()}")
        self.status, self.body = status, body


def run(coro):
    """Runs a coroutine on a fresh event loop (uvloop's when installed)."""
    if uvloop is not None:
        return uvloop.run(coro)
    return asyncio.run(coro)


class Response:
    def __init__(self, status, headers, parts):
        self.status, self.headers, self.parts = status, headers, parts

    @property
    def body(self):
        """The body as bytes (joined here, after any timing, when it came in chunks)."""
        return bytes(self.parts[0]) if len(self.parts) == 1 else b"".join(self.parts)

    def __len__(self):
        return sum(len(p) for p in self.parts)


class _Protocol(asyncio.BufferedProtocol):
    """Receives one response at a time: heads and chunk-size lines into a small control
    buffer, bodies (or chunks) straight into a buffer of their exact size."""

    def __init__(self):
        self.ctl, self.start, self.pos = bytearray(CTL_SIZE), 0, 0  # unparsed bytes: ctl[start:pos]
        self.target, self.got = None, 0
        self.state, self.parts = "idle", []
        self.done = self.writable = None
        self.closed = False

    # -- transport callbacks

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        if self.target is not None:
            return memoryview(self.target)[self.got:]
        if len(self.ctl) - self.pos < CTL_SIZE // 2:  # compact (no buffer is lent out now)
            n = self.pos - self.start
            self.ctl[:n] = self.ctl[self.start:self.pos]
            self.start, self.pos = 0, n
            if len(self.ctl) - self.pos < CTL_SIZE // 2:
                self.ctl.extend(bytes(CTL_SIZE))
        return memoryview(self.ctl)[self.pos:]

    def buffer_updated(self, nbytes):
        try:
            if self.target is not None:
                self.got += nbytes
                if self.got == len(self.target):
                    self._data_done()
            else:
                self.pos += nbytes
                self._parse_ctl()
        except Exception as exc:  # a malformed answer fails the request, not the loop
            self._fail(exc)

    def eof_received(self):
        if self.state == "to-eof":
            self.parts.append(bytes(self.ctl[self.start:self.pos]))
            self.start = self.pos
            self._finish()
        self.closed = True

    def connection_lost(self, exc):
        self.closed = True
        self._fail(exc or ConnectionError("connection closed before the answer was complete"))

    def pause_writing(self):
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self):
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    # -- parsing

    def expect(self):
        self.state, self.parts, self.status, self.headers, self.length = "head", [], None, {}, None
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def _take_line(self, sep):
        end = self.ctl.find(sep, self.start, self.pos)
        if end < 0:
            return None
        line = bytes(self.ctl[self.start:end])
        self.start = end + len(sep)
        return line

    def _parse_ctl(self):
        while self.target is None and self.done is not None and not self.done.done():
            if self.state == "head":
                head = self._take_line(b"\r\n\r\n")
                if head is None:
                    return
                self._read_head(head)
            elif self.state == "size":
                line = self._take_line(b"\r\n")
                if line is None:
                    return
                if line:  # an empty line is the end of the previous chunk's data
                    size = int(line.split(b";")[0], 16)
                    self.state = "trailer" if size == 0 else "size"
                    if size:
                        self._start_data(size)
            elif self.state == "trailer":
                if self._take_line(b"\r\n") is None:
                    return
                self._finish()
            else:  # "to-eof": everything until the server closes
                return

    def _read_head(self, head):
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if "content-length" in self.headers:
            self.length = int(self.headers["content-length"])
            self.state = "body"
            if self.length:
                self._start_data(self.length)
            else:
                self._finish()
        elif self.headers.get("transfer-encoding", "").lower() == "chunked":
            self.state = "size"
        else:
            self.state = "to-eof"

    def _start_data(self, size):
        self.target = bytearray(size)
        take = min(size, self.pos - self.start)
        self.target[:take] = self.ctl[self.start:self.start + take]
        self.start += take
        self.got = take
        if take == size:
            self._data_done()

    def _data_done(self):
        self.parts.append(self.target)
        self.target = None
        if self.state == "body":
            self._finish()
        else:
            self._parse_ctl()

    def _finish(self):
        if self.done is not None and not self.done.done():
            self.done.set_result(Response(self.status, self.headers, self.parts))

    def _fail(self, exc):
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)


class Connection:
    """One keep-alive connection; reopened when the server closes it."""

    def __init__(self, host, port, headers):
        self.host, self.port, self.headers = host, port, dict(headers or {})
        self.transport = self.proto = None

    @classmethod
    async def open(cls, url, headers=None):
        host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
        conn = cls(host, int(port), headers)
        await conn._connect()
        return conn

    async def _connect(self):
        loop = asyncio.get_running_loop()
        self.transport, self.proto = await loop.create_connection(_Protocol, self.host, self.port)

    def close(self):
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    async def request(self, method, target, body=b"", headers=None):
        """Sends a request and returns its Response; raises HttpError for a status >= 400.

        `body` is bytes, or an iterable of byte blocks sent as they come (the caller then
        sets the content-length header)."""
        if self.transport is None or self.proto.closed:
            await self._connect()
        hdrs = {"Host": f"{self.host}:{self.port}", **self.headers, **(headers or {})}
        if isinstance(body, (bytes, bytearray)):
            hdrs.setdefault("Content-Length", str(len(body)))
        done = self.proto.expect()
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        self.transport.write(head.encode())
        blocks = [body] if isinstance(body, (bytes, bytearray)) else body
        for block in blocks:
            if self.proto.writable is not None:
                await self.proto.writable
            self.transport.write(block)
        resp = await asyncio.wait_for(done, TIMEOUT)
        if resp.headers.get("connection", "").lower() == "close":
            self.close()
        if resp.status >= 400:
            raise HttpError(resp.status, resp.body)
        return resp

    async def get(self, target, headers=None):
        return await self.request("GET", target, headers=headers)


async def timed_gets(url, targets, headers=None):
    """GETs `targets` one after the other on one connection.

    Returns (seconds per request, the first Response, the bytes of all bodies)."""
    conn = await Connection.open(url, headers)
    times, first, nbytes = [], None, 0
    try:
        for target in targets:
            t = time.perf_counter()
            resp = await conn.get(target)
            times.append(time.perf_counter() - t)
            if first is None:
                first = resp
            nbytes += len(resp)
    finally:
        conn.close()
    return times, first, nbytes


async def request_rate(url, target, concurrency, seconds, headers=None):
    """Requests per second of GET `target` over `concurrency` keep-alive connections,
    each sending its next request as soon as its answer is in (after a warm-up)."""
    conns = [await Connection.open(url, headers) for _ in range(concurrency)]
    try:
        await asyncio.gather(*(c.get(target) for c in conns))
        start = time.perf_counter()
        deadline = start + seconds

        async def loop(conn):
            n = 0
            while time.perf_counter() < deadline:
                await conn.get(target)
                n += 1
            return n

        counts = await asyncio.gather(*(loop(c) for c in conns))
        return sum(counts) / (time.perf_counter() - start)
    finally:
        for c in conns:
            c.close()
