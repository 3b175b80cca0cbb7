"""One socket write per response (townhall/response_writes.py), and what must not change because of it:
a stream's headers leave before its body exists, a websocket upgrade gets the real transport (and is not
refused: the guard read a response cycle that an upgrade never creates, and uvicorn answered 400),
keep-alive requests on one connection each get their whole answer."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
import uvicorn
import websockets

from townhall.connection_guard import ConnectionGuard, ConnectionLimits
from townhall.response_writes import CoalescedWrites
from townhall.testing.process import free_port


class _Recorded(asyncio.Transport):
    """Keeps what was written, one entry per ``write`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def _next_step() -> None:
    await asyncio.sleep(0)


def _connection(*, length: int | None = None, method: str = "GET") -> Any:
    """A connection whose request cycle (uvicorn's) is answering with ``length`` body bytes still to
    write (``None``: a stream, no Content-Length)."""
    cycle = SimpleNamespace(chunked_encoding=length is None, expected_content_length=length or 0,
                            response_complete=False, scope={"method": method})
    return SimpleNamespace(cycle=cycle)


async def test_headers_and_body_written_in_one_step_leave_in_one_write() -> None:
    raw = _Recorded()
    writes = CoalescedWrites(raw, asyncio.get_running_loop(), _connection(length=2))
    writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    writes.write(b"{}")
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await _next_step()
    assert len(raw.writes) == 1


async def test_a_lone_write_leaves_at_the_end_of_the_step_and_close_sends_what_is_held() -> None:
    raw = _Recorded()
    writes = CoalescedWrites(raw, asyncio.get_running_loop(), _connection())
    writes.write(b"headers")
    assert raw.writes == []
    await _next_step()
    assert raw.writes == [b"headers"]
    writes.write(b"last words")
    writes.close()
    assert raw.writes == [b"headers", b"last words"] and raw.closed


async def test_the_headers_of_a_known_length_wait_for_their_body_across_steps() -> None:
    raw = _Recorded()
    connection = _connection(length=2)
    writes = CoalescedWrites(raw, asyncio.get_running_loop(), connection)
    writes.write(b"headers")
    await _next_step()
    assert raw.writes == []  # uvicorn writes the two body bytes next, whenever the app sends them
    connection.cycle.expected_content_length = 0  # counted down before the write
    writes.write(b"{}")
    assert raw.writes == [b"headers{}"]
    # The last piece of a body in parts leaves at the end of its step even with nothing after it.
    writes.write(b"trailing")
    await _next_step()
    assert raw.writes == [b"headers{}", b"trailing"]


async def test_a_head_answer_with_a_length_leaves_at_the_end_of_the_step() -> None:
    raw = _Recorded()
    writes = CoalescedWrites(raw, asyncio.get_running_loop(), _connection(length=15, method="HEAD"))
    writes.write(b"headers")
    await _next_step()
    assert raw.writes == [b"headers"]


@pytest.fixture
async def guarded_server() -> Any:
    """uvicorn with townhall's guarded protocol, serving a small app: ``/stream`` sends its headers,
    then a body chunk once the test sets ``release``; ``/echo`` is a websocket; anything else is a
    small JSON answer naming the path."""
    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            message = await receive()
            await send({"type": "websocket.send", "text": "echo " + message["text"]})
            await send({"type": "websocket.close"})
            return
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain")]})
            await release.wait()
            await send({"type": "http.response.body", "body": b"chunk", "more_body": False})
            return
        body = b'{"path":"' + scope["path"].encode() + b'"}'
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    guard = ConnectionGuard(ConnectionLimits(max_connections=16, max_header_bytes=16384,
                                             header_timeout_secs=30, body_timeout_secs=30))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=guard.protocol_factory(),
                                           lifespan="on", log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await _next_step()
    yield port, release
    server.should_exit = True
    await task


async def _read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.startswith(b"content-length"))
    return head, await reader.readexactly(length)


async def test_keep_alive_requests_on_one_connection_each_get_their_whole_answer(guarded_server: Any) -> None:
    port, _ = guarded_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(50):
        writer.write(f"GET /r{i} HTTP/1.1\r\nhost: t\r\n\r\n".encode())
        head, body = await _read_response(reader)
        assert head.startswith(b"HTTP/1.1 200 OK") and body == f'{{"path":"/r{i}"}}'.encode()
    writer.close()


async def test_a_head_request_gets_its_headers(guarded_server: Any) -> None:
    port, _ = guarded_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(2):  # and the connection goes on
        writer.write(b"HEAD /h HTTP/1.1\r\nhost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 13" in head
    writer.close()


async def test_a_streams_headers_arrive_before_its_body_exists(guarded_server: Any) -> None:
    port, release = guarded_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /stream HTTP/1.1\r\nhost: t\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"transfer-encoding: chunked" in head
    release.set()
    assert await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), timeout=10) == b"5\r\nchunk\r\n0\r\n\r\n"
    writer.close()


async def test_a_websocket_upgrade_through_the_guarded_protocol_works(guarded_server: Any) -> None:
    port, _ = guarded_server
    async with websockets.connect(f"ws://127.0.0.1:{port}/echo") as socket:
        await socket.send("hello")
        assert await socket.recv() == "echo hello"
