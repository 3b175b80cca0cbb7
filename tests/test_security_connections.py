"""Issue 14 item 5: clients that never finish a request cannot exhaust a real townhall's connections."""

from __future__ import annotations

import resource
import socket
import time
from pathlib import Path
from typing import Iterator

import httpx
import msgspec
import pytest

from townhall.testing.process import TownhallProcess
from townhall.testing.towns import write_town

PARTIAL_REQUEST = b"GET /health HTTP/1.1\r\nHost: townhall\r\nX-Slow: "


def _townhall(root: Path, town_name: str, redis_url: str, timeout_secs: int) -> TownhallProcess:
    write_town(root, town_name, redis_url=redis_url, extra=(
        "[townhall]\nmax_connections = 64\nmax_header_bytes = 16384\n"
        f"header_timeout_secs = {timeout_secs}\nbody_timeout_secs = {timeout_secs}\n"
    ))
    return TownhallProcess(root).start()


@pytest.fixture
def limited(tmp_path: Path, town_name: str, redis_url: str) -> Iterator[TownhallProcess]:
    proc = _townhall(tmp_path, town_name, redis_url, timeout_secs=2)
    yield proc
    proc.stop()


@pytest.fixture
def patient(tmp_path: Path, town_name: str, redis_url: str) -> Iterator[TownhallProcess]:
    """Read deadlines far away: what keeps /health answering is the connection cap alone."""
    proc = _townhall(tmp_path, town_name, redis_url, timeout_secs=60)
    yield proc
    proc.stop()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (reading whatever it sends)."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_an_8_mib_header_is_refused_with_431(limited: TownhallProcess) -> None:
    with _connect(limited.port) as sock:
        sent = 0
        try:
            sock.sendall(PARTIAL_REQUEST)
            chunk = b"a" * 65536
            while sent < 8 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while sending: what matters is that it never got through
        sock.settimeout(5)
        try:
            reply = sock.recv(65536)
        except ConnectionResetError:
            reply = b""
    assert not reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert reply == b"" or reply.startswith(b"HTTP/1.1 431"), reply[:200]
    assert sent < 8 * 1024 * 1024 or reply.startswith(b"HTTP/1.1 431")
    assert httpx.get(f"{limited.url}/health", timeout=5).status_code == 200


def test_a_header_just_under_the_limit_is_served(limited: TownhallProcess) -> None:
    response = httpx.get(f"{limited.url}/health", headers={"X-Pad": "a" * 12000}, timeout=5)
    assert response.status_code == 200


def _read_response(sock: socket.socket) -> bytes:
    """One whole response (headers and a Content-Length body) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_body_past_the_header_limit_is_never_counted_as_headers(limited: TownhallProcess) -> None:
    # The headers arrive alone (the server asks for the body with 100 Continue once it read them),
    # then a 60 KB body in reads each larger than the 16 KB header limit: body, not headers.
    body = msgspec.json.encode({"description": "x" * 60_000})
    with _connect(limited.port) as sock:
        sock.sendall(b"POST /v1/backlog HTTP/1.1\r\nHost: townhall\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(65536).startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        assert _read_response(sock).startswith(b"HTTP/1.1 201"), "the body was refused"
        # Each next request on the connection is counted afresh: two of 10 KB of headers (together past
        # the limit), each sent in two pieces...
        for _ in range(2):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: townhall\r\nX-Pad: " + b"a" * 6000)
            sock.sendall(b"a" * 4000 + b"\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
        # ... and the one after it, past the limit, is refused.
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: townhall\r\nX-Pad: " + b"a" * 20000)
        assert sock.recv(65536).startswith(b"HTTP/1.1 431")


def test_half_open_connections_are_closed_after_the_configured_time(limited: TownhallProcess) -> None:
    silent = _connect(limited.port)
    half_headers = _connect(limited.port)
    half_headers.sendall(PARTIAL_REQUEST)
    half_body = _connect(limited.port)
    half_body.sendall(b"POST /v1/tasks/assign HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"x\":")
    blank_lines = _connect(limited.port)  # never starts a request: keeps the keep-alive timer off
    trickle = _connect(limited.port)      # slowloris: one header byte every 0.3 s
    trickle.sendall(PARTIAL_REQUEST)
    try:
        started = time.monotonic()
        trickle.settimeout(0.3)
        while time.monotonic() - started < 4.0:
            try:
                trickle.sendall(b"x")
                blank_lines.sendall(b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                if trickle.recv(1) == b"":
                    break
            except TimeoutError:
                pass
        assert time.monotonic() - started < 4.0, "the slowloris connection was still open after 4 s"
        for sock in (silent, half_headers, half_body, blank_lines):
            assert _closed_by_server(sock, within=3.0)
    finally:
        for sock in (silent, half_headers, half_body, blank_lines, trickle):
            sock.close()


def test_300_half_sent_requests_do_not_stop_health(patient: TownhallProcess) -> None:
    # The audit's setting: a server with only 256 file descriptors.
    assert patient.process is not None
    resource.prlimit(patient.process.pid, resource.RLIMIT_NOFILE, (256, 256))
    socks: list[socket.socket] = []
    try:
        for _ in range(300):
            sock = socket.socket()
            sock.setblocking(False)
            try:
                sock.connect(("127.0.0.1", patient.port))
            except BlockingIOError:
                pass
            socks.append(sock)
        time.sleep(1.0)  # let the server accept them all: /health must be the newest connection
        for sock in socks:
            try:
                sock.send(PARTIAL_REQUEST)
            except OSError:
                pass  # already closed by the server to make room
        response = httpx.get(f"{patient.url}/health", timeout=10)
        assert response.status_code == 200, (response.headers, response.text[:300], patient.output()[-2000:])
    finally:
        for sock in socks:
            sock.close()
    # Still usable afterwards, over one keep-alive connection.
    with httpx.Client(base_url=patient.url, timeout=5) as client:
        assert all(client.get("/health").status_code == 200 for _ in range(5))


def test_limits_are_validated() -> None:
    from townhall.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="max_header_bytes"):
        parse_config('name = "x"\n[townhall]\nmax_header_bytes = 10\n')
    with pytest.raises(ConfigError, match="header_timeout_secs"):
        parse_config('name = "x"\n[townhall]\nheader_timeout_secs = 0\n')
    config, _ = parse_config('name = "x"\n')
    assert (config.townhall.max_connections, config.townhall.max_header_bytes) == (512, 65536)
    assert (config.townhall.header_timeout_secs, config.townhall.body_timeout_secs) == (10, 30)
