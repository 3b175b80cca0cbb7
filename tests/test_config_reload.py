"""Issue 17 item 8: a running townhall reloads presets and the other hot settings on SIGHUP; it says
which presets it knows when one is unknown; config warnings suggest the key that was meant; a preset
without a command is named."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.support.workers import wait_for
from townhall.config import ConfigError, parse_config
from townhall.testing.process import TownhallProcess
from townhall.testing.towns import append_config, write_town


def test_unknown_keys_suggest_the_key_meant() -> None:
    _, warnings = parse_config('name = "t"\ndefault_clii = "x"\n[agent]\nidle_timeout_sec = 3\n[townhall]\nzzz = 1\n')
    assert warnings == [
        "townhall: tinytown.toml: unknown key 'default_clii' (ignored); did you mean 'default_cli'?",
        "townhall: tinytown.toml: unknown key 'agent.idle_timeout_sec' (ignored); did you mean "
        "'agent.idle_timeout_secs'?",
        "townhall: tinytown.toml: unknown key 'townhall.zzz' (ignored)",
    ]


def test_a_preset_without_its_command_is_named() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config('name = "t"\n[agent_clis.ok]\nname = "ok"\ncommand = "x"\n[agent_clis.slow]\nname = "slow"\n')
    assert str(raised.value) == "townhall: tinytown.toml: agent_clis.slow.command: required key is missing"


def _logged(proc: TownhallProcess, text: str, after: int) -> bool:
    return text in proc.output()[after:]


def test_sighup_reloads_presets_into_a_running_townhall(tmp_path: Path, town_name: str, redis_url: str) -> None:
    write_town(tmp_path, town_name, redis_url=redis_url,
               extra='[agent]\nlauncher = "none"\n[agent_clis.fast]\nname = "fast"\ncommand = "true"\n')
    proc = TownhallProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as client:
            refused = client.post("/v1/agents", json={"name": "w1", "cli": "slow"})
            assert refused.status_code == 422
            detail = refused.json()["detail"]
            assert "unknown CLI preset 'slow': the running townhall knows " in detail
            assert "fast" in detail and "claude" in detail and "[agent_clis.slow]" in detail

            append_config(tmp_path, '[agent_clis.slow]\nname = "slow"\ncommand = "sleep 1"\n')
            mark = len(proc.output())
            assert proc.process is not None
            proc.process.send_signal(signal.SIGHUP)
            wait_for(lambda: _logged(proc, "config reloaded: agent_clis", mark), timeout=30)
            assert "configured presets: fast, slow" in proc.output()[mark:]
            spawned = client.post("/v1/agents", json={"name": "w1", "cli": "slow"})
            assert spawned.status_code == 201 and spawned.json()["cli"] == "slow", spawned.text

            # A file that does not load is refused whole: the running presets stay.
            append_config(tmp_path, '[agent_clis.broken]\nname = "broken"\n')
            mark = len(proc.output())
            proc.process.send_signal(signal.SIGHUP)
            wait_for(lambda: _logged(proc, "config reload refused", mark), timeout=30)
            assert "agent_clis.broken.command: required key is missing" in proc.output()[mark:]
            assert client.post("/v1/agents", json={"name": "w2", "cli": "slow"}).status_code == 201
            assert proc.process.poll() is None
    finally:
        proc.stop()


def test_sighup_says_what_waits_for_a_restart(tmp_path: Path, town_name: str, redis_url: str) -> None:
    write_town(tmp_path, town_name, redis_url=redis_url)
    proc = TownhallProcess(tmp_path).start()
    try:
        append_config(tmp_path, '[townhall]\nmax_body_bytes = 2048\nrest_prot = 1\n')
        mark = len(proc.output())
        assert proc.process is not None
        proc.process.send_signal(signal.SIGHUP)
        wait_for(lambda: _logged(proc, "applied only when townhall restarts: townhall", mark), timeout=30)
        assert "did you mean 'townhall.rest_port'?" in proc.output()[mark:]
        assert httpx.get(f"{proc.url}/health", timeout=30).status_code == 200
    finally:
        proc.stop()


def test_sighup_reloads_every_server_process(tmp_path: Path, town_name: str, redis_url: str) -> None:
    """With ``workers = 2`` the supervisor passes SIGHUP on: each process reloads (uvicorn's own answer,
    restarting the processes, would have started them with the config of the first start)."""
    write_town(tmp_path, town_name, redis_url=redis_url,
               extra='[agent]\nlauncher = "none"\n[agent_clis.fast]\nname = "fast"\ncommand = "true"\n')
    proc = TownhallProcess(tmp_path, args=["--workers", "2"]).start(timeout=120)
    try:
        append_config(tmp_path, '[agent_clis.slow]\nname = "slow"\ncommand = "sleep 1"\n')
        mark = len(proc.output())
        assert proc.process is not None
        proc.process.send_signal(signal.SIGHUP)
        # The parent's copy and both processes' own.
        wait_for(lambda: proc.output()[mark:].count("config reloaded: agent_clis") == 3, timeout=60)
        for n in range(8):  # a new connection each: the kernel hands them to either process
            with httpx.Client(base_url=proc.url, timeout=30) as client:
                spawned = client.post("/v1/agents", json={"name": f"w{n}", "cli": "slow"})
                assert spawned.status_code == 201, spawned.text
        assert "Received SIGHUP, restarting processes" not in proc.output()
    finally:
        assert proc.stop() == 0
