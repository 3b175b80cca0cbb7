"""``[townhall] workers`` / ``townhall rest --workers`` (issue 15, item 1): several server processes on
one port, the town's private Redis started once and shared, the banner printed once, ``/metrics``
adding up every process's requests, SIGTERM stopping them all, HTTPS handshakes with each."""

from __future__ import annotations

import signal
import ssl
from pathlib import Path

import httpx
import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from townhall.redis_endpoint import ping
from townhall.testing.process import TownhallProcess, run_cli
from townhall.testing.towns import read_audit, write_town


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def answering_pid(url: str, **kwargs: object) -> int:
    text = httpx.get(f"{url}/metrics", timeout=10, **kwargs).text  # type: ignore[arg-type]
    [(labels, count)] = samples(text, "tinytown_server_process")
    assert count == 2  # how many processes serve the port
    return int(labels["pid"])


def both_pids(url: str, **kwargs: object) -> set[int]:
    """Scrape until two processes have answered (bounded: the kernel spreads new connections over the
    processes waiting in accept, so both answer long before the bound)."""
    seen: set[int] = set()
    for _ in range(400):
        seen.add(answering_pid(url, **kwargs))
        if len(seen) == 2:
            break
    return seen


def test_two_processes_share_the_port_the_private_redis_and_stop_on_sigterm(tmp_path: Path, town_name: str) -> None:
    # No Redis URL: townhall starts the town's private server.
    write_town(tmp_path, town_name, extra='[townhall.audit]\nfile = "audit.jsonl"\n')
    proc = TownhallProcess(tmp_path, args=["--workers", "2"]).start(timeout=120)
    private = f"unix://{tmp_path / '.tt' / 'redis.sock'}"
    try:
        pids = both_pids(proc.url)
        assert len(pids) == 2, pids
        assert proc.process is not None and proc.process.pid not in pids
        for _ in range(20):
            assert httpx.get(f"{proc.url}/v1/status", timeout=10).status_code == 200
        # Whichever process answers the scrape, it counts the requests of both.
        text = httpx.get(f"{proc.url}/metrics", timeout=10).text
        counted = {labels["status"]: value for labels, value in samples(text, "tinytown_http_requests_total")
                   if labels["route"] == "/v1/status"}
        assert counted == {"200": 20.0}
        # Work written through one process is seen by the other (one Redis, started once).
        for n in range(6):
            answer = httpx.post(f"{proc.url}/v1/backlog", json={"description": f"shared {n}"}, timeout=10)
            assert answer.status_code == 201
        for _ in range(10):
            assert httpx.get(f"{proc.url}/v1/backlog", timeout=10).json()["count"] == 6
        assert ping(private)
    finally:
        code = proc.stop(signal.SIGTERM, timeout=60)
    assert code == 0, proc.output()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    assert not ping(private)  # the last process out stopped the private server
    # Each process rotates an audit file of its own: every write is in one of them, once.
    audits = {int(p.name.split(".")[1]): read_audit(p) for p in tmp_path.glob("audit.*.jsonl")}
    assert set(audits) <= pids
    assert sorted(line["path"] for lines in audits.values() for line in lines) == ["/v1/backlog"] * 6
    out = proc.output()
    # Startup checks and the banner once, from the parent; each process reconciles on its own.
    assert out.count("Townhall starting for town") == 1 and out.count("REST API listening") == 1, out
    assert out.count("starting private Redis") == 1, out
    assert "2 server processes" in out
    assert out.count("indexes reconciled") == 2, out


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_https_handshakes_with_every_process(town_dir: Path) -> None:
    ca = trustme.CA()
    cert = town_dir / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(cert)
    with (town_dir / "tinytown.toml").open("a") as f:
        f.write(f'[townhall]\nworkers = 2\n[townhall.tls]\nenabled = true\ncert_file = "{cert}"\nkey_file = "{cert}"\n')
    context = ssl.create_default_context()
    ca.configure_trust(context)
    proc = TownhallProcess(town_dir, scheme="https").start(wait=False)
    try:
        proc.wait_healthy(120, verify=context)
        assert len(both_pids(proc.url, verify=context)) == 2
        assert httpx.get(f"{proc.url}/v1/status", verify=context, timeout=10).status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{proc.port}/health", timeout=5)
    finally:
        assert proc.stop(timeout=60) == 0, proc.output()


@pytest.mark.parametrize("how", ["config", "option"])
def test_workers_below_one_is_refused_naming_the_key(town_dir: Path, how: str) -> None:
    if how == "config":
        text = (town_dir / "tinytown.toml").read_text()
        (town_dir / "tinytown.toml").write_text(text.replace("max_agents = 10\n", "max_agents = 10\n[townhall]\nworkers = 0\n", 1))
        result = run_cli("--town", str(town_dir), "rest", "--port", "0")
        assert result.returncode == 2, result.stderr
        assert "townhall.workers" in result.stderr and ">= 1" in result.stderr, result.stderr
    else:
        result = run_cli("--town", str(town_dir), "rest", "--workers", "0")
        assert result.returncode == 2, result.stderr
        assert "--workers" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
