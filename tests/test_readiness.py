"""The notify protocol townhall and workers speak to say they are ready (``tt up``, systemd)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from townhall.readiness import NOTIFY_ENV, ReadySockets, notify_ready


def test_ready_reaches_the_socket_of_the_sender_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sockets = ReadySockets(tmp_path / "ready")
    (tmp_path / "ready").mkdir()
    first, second = sockets.address("first"), sockets.address("second")
    monkeypatch.setenv(NOTIFY_ENV, first)
    notify_ready()
    assert NOTIFY_ENV not in os.environ  # a CLI the worker starts later must not say it for it
    notify_ready()  # nothing to send to: no error
    assert sockets.wait({"first", "second"}, 0.2) == {"first"}
    monkeypatch.setenv(NOTIFY_ENV, second)
    notify_ready()
    assert sockets.wait({"second"}, 5) == {"second"}
    sockets.close()
    assert not (tmp_path / "ready").exists()


def test_abstract_socket_and_a_gone_supervisor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    name = f"townhall-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        monkeypatch.setenv(NOTIFY_ENV, "@" + name)
        notify_ready()
        assert listener.recv(64) == b"READY=1"
    monkeypatch.setenv(NOTIFY_ENV, str(tmp_path / "nobody.sock"))
    notify_ready()  # best effort, as sd_notify: no exception
