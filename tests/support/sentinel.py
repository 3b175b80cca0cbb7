"""A Redis Sentinel deployment on this machine for tests: a primary, replicas and three sentinels on free
loopback ports (never 6379), Debian's ``redis-server`` and ``redis-sentinel``."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from townhall.testing.process import free_port

SERVICE = "townhall-primary"


def require_sentinel() -> str:
    found = shutil.which("redis-sentinel")
    if not found:
        pytest.skip("redis-sentinel is not installed (apt-get install -y redis-sentinel)")
    return found


class Node:
    def __init__(self, directory: Path, args: list[str]) -> None:
        self.directory = directory
        self.args = args
        self.port = int(args[args.index("--port") + 1]) if "--port" in args else 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.args, cwd=self.directory, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class SentinelCluster:
    """``replicas`` replicas of one primary, watched by three sentinels (quorum 2) that declare a node
    down after ``down_after_ms``."""

    def __init__(self, directory: Path, *, replicas: int = 1, down_after_ms: int = 1000) -> None:
        self.directory = directory
        self.down_after_ms = down_after_ms
        ports = [free_port() for _ in range(1 + replicas)]
        self.nodes = [self._data_node(i, port, ports[0] if i else None) for i, port in enumerate(ports)]
        self.sentinels = [self._sentinel(i, ports[0]) for i in range(3)]

    def _data_node(self, index: int, port: int, primary: int | None) -> Node:
        where = self.directory / f"node{index}"
        args = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(where), "--logfile", str(where / "redis.log")]
        if primary is not None:
            args += ["--replicaof", "127.0.0.1", str(primary)]
        return Node(where, args)

    def _sentinel(self, index: int, primary: int) -> Node:
        where = self.directory / f"sentinel{index}"
        where.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = where / "sentinel.conf"  # a sentinel rewrites its own config: one writable file each
        conf.write_text("\n".join([
            f"port {port}", "bind 127.0.0.1", f"dir {where}", f"logfile {where / 'sentinel.log'}",
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2",
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}",
            f"sentinel failover-timeout {SERVICE} 10000",
            f"sentinel parallel-syncs {SERVICE} 2",
        ]) + "\n")
        node = Node(where, [require_sentinel(), str(conf), "--port", str(port)])
        return node

    @property
    def hosts(self) -> list[str]:
        return [f"127.0.0.1:{s.port}" for s in self.sentinels]

    def toml(self) -> str:
        hosts = ", ".join(f'"{h}"' for h in self.hosts)
        return f'[redis.sentinel]\nhosts = [{hosts}]\nservice_name = "{SERVICE}"\n'

    def start(self) -> None:
        for node in [*self.nodes, *self.sentinels]:
            node.start()
        self.wait(lambda: self.primary_port() == self.nodes[0].port and self._replicas_seen() >= len(self.nodes) - 1
                  and self.online_replicas(self.nodes[0].port) == len(self.nodes) - 1,
                  "the sentinels did not see the primary and its replicas in sync")

    def stop(self) -> None:
        for node in [*self.sentinels, *self.nodes]:
            node.stop()

    def primary_port(self) -> int | None:
        """The primary's port as the first sentinel that answers sees it."""
        for sentinel in self.sentinels:
            try:
                client = redis.Redis(host="127.0.0.1", port=sentinel.port, socket_timeout=1, decode_responses=True)
                try:
                    address = client.sentinel_get_master_addr_by_name(SERVICE)
                finally:
                    client.close()
            except (redis.RedisError, OSError):
                continue
            if address:
                return int(address[1])
        return None

    def _replicas_seen(self) -> int:
        client = redis.Redis(host="127.0.0.1", port=self.sentinels[0].port, socket_timeout=1, decode_responses=True)
        try:
            return len([r for r in client.sentinel_slaves(SERVICE) if not r["is_sdown"]])
        except (redis.RedisError, OSError):
            return 0
        finally:
            client.close()

    def online_replicas(self, port: int) -> int:
        """Replicas in sync with the primary on ``port`` (done with their first full copy)."""
        client = self.client(port)
        try:
            info = client.info("replication")
        except (redis.RedisError, OSError):
            return 0
        finally:
            client.close()
        return len([v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                    and v.get("state") == "online"])

    def node_on(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)

    def kill_primary(self) -> Node:
        """SIGKILL the current primary (it loses whatever it did not replicate yet)."""
        port = self.primary_port()
        assert port is not None
        node = self.node_on(port)
        node.kill()
        return node

    def wait_failover(self, old_port: int, timeout: float = 60) -> int:
        self.wait(lambda: self.primary_port() not in (None, old_port), "no failover happened", timeout)
        port = self.primary_port()
        assert port is not None
        return port

    @staticmethod
    def wait(condition: object, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise AssertionError(what)
            time.sleep(0.1)
