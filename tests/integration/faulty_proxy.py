"""A small real TCP proxy for HTTP between an edge and central that breaks or corrupts one model
download on demand. Both are faults of the network between two machines that no part of the product
can be told to cause: a connection cut mid-transfer, and a byte changed in transit (a broken
middlebox, a bad NIC). One request per connection (it asks central for ``Connection: close``), so
each response's body starts right after its head."""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field


@dataclass
class Seen:
    path: str
    range: str | None
    cut_after: int | None = None  # body bytes passed on before the cut
    corrupted: bool = False


@dataclass
class FaultyProxy:
    upstream_port: int
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    _cut: tuple[str, int] | None = None
    _corrupt: str | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cut_next(self, sha256: str, after: int) -> None:
        """The next download of SHA256 ends after AFTER bytes of its body (the connection is closed)."""
        self._cut = (sha256, after)

    def corrupt_next(self, sha256: str) -> None:
        """The next download of SHA256 has one byte of its body flipped."""
        self._corrupt = sha256

    def seen(self, sha256: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.requests if s.path.endswith(sha256)]

    def start(self) -> FaultyProxy:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            server.close()

        threading.Thread(target=run, name="faulty-proxy", daemon=True).start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            head = await client_r.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            client_w.close()
            return
        text = head.decode("latin-1")
        path = text.split(" ", 2)[1]
        asked = re.search(r"(?im)^range:\s*(.+?)\r$", text)
        seen = Seen(path, asked.group(1) if asked else None)
        with self._lock:
            self.requests.append(seen)
        text = re.sub(r"(?im)^connection:.*\r\n", "", text).replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
        cut = self._cut if self._cut and path.endswith(self._cut[0]) else None
        if cut:
            self._cut = None
        corrupt = self._corrupt is not None and path.endswith(self._corrupt)
        if corrupt:
            self._corrupt = None
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_w.write(text.encode("latin-1"))
        await up_w.drain()
        buffer, body_seen, head_done = b"", 0, False
        try:
            while data := await up_r.read(65536):
                if not head_done:
                    buffer += data
                    if b"\r\n\r\n" not in buffer:
                        continue
                    response_head, _, data = buffer.partition(b"\r\n\r\n")
                    client_w.write(response_head + b"\r\n\r\n")
                    head_done = True
                if corrupt and not seen.corrupted and body_seen + len(data) > 5000:
                    at = 5000 - body_seen
                    data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
                    seen.corrupted = True
                if cut and body_seen + len(data) >= cut[1]:
                    client_w.write(data[:cut[1] - body_seen])
                    seen.cut_after = cut[1]
                    await client_w.drain()
                    break
                body_seen += len(data)
                client_w.write(data)
                await client_w.drain()
        except ConnectionError:
            pass
        finally:
            up_w.close()
            client_w.close()
