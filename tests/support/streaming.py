"""A client that streams a large body (chunked, no Content-Length) and watches when the hub answers and
closes: what an endpoint that reads its whole body first cannot pass."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from dataclasses import dataclass

__all__ = ["StreamedUpload", "stream_large_body"]


@dataclass(frozen=True, slots=True)
class StreamedUpload:
    status: int | None  #: the answer's status, None when none came
    head: str  #: the answer's status line and headers
    sent: int  #: body bytes written before the hub closed the connection (or all of them)
    closed: bool  #: the hub closed the connection before the whole body was sent


async def stream_large_body(
    url: str, headers: dict[str, str], *, total: int = 64 * 1024 * 1024, chunk: int = 64 * 1024
) -> StreamedUpload:
    """POST ``total`` bytes to ``url`` in chunks, reading the answer as soon as one comes."""
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head_lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Transfer-Encoding: chunked"]
    head_lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head_lines) + "\r\n\r\n").encode())
    piece = b"%x\r\n%s\r\n" % (chunk, b"x" * chunk)
    received = b""
    sent = 0
    closed = False
    try:
        while sent < total:
            writer.write(piece)
            try:
                await asyncio.wait_for(writer.drain(), 5)
            except TimeoutError:
                break  # the hub stopped reading without closing
            sent += chunk
            with contextlib.suppress(TimeoutError):
                data = await asyncio.wait_for(reader.read(65536), 0.001)
                if not data:
                    closed = True
                    break
                received += data
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    if not closed:
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while data := await asyncio.wait_for(reader.read(65536), 5):
                received += data
            closed = sent < total
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status = int(head.split(" ", 2)[1]) if head.startswith("HTTP/") else None
    return StreamedUpload(status, head, sent, closed)
