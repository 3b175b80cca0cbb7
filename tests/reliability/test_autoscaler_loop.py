"""The autoscaler loop end to end (issue 12): a scaler that plays KEDA (``bench.autoscaler``) polls
``/api/scaling`` once a second and starts real pool workers with the replica command of
docs/autoscaling.md; workers are SIGKILLed at random meanwhile. Every task is completed exactly once,
the town scales to more than one worker and back to zero, every surviving worker exits 0 on its idle
timeout, and no agent record is left. Both queue modes; the long form has more tasks and kills."""

from __future__ import annotations

import random
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
import redis

from bench.autoscaler import WORKER_COMMAND, Autoscaler
from tests.reliability.conftest import LONG
from tests.support.workers import fake_town, wait_for
from townhall.keys import TownKeys
from townhall.testing.process import BIN, TownhallProcess

DOC = Path(__file__).parents[2] / "docs" / "autoscaling.md"
MAX_AGENTS = 4


def doc_worker_command(town: Path) -> list[str]:
    """The replica command exactly as docs/autoscaling.md gives it, pointed at ``town``."""
    match = re.search(r"```sh\n(townhall --town /town worker)\n```", DOC.read_text(encoding="utf-8"))
    assert match, "docs/autoscaling.md lost its replica command"
    words = match.group(1).split()
    assert words == [w.replace("{town}", "/town") for w in WORKER_COMMAND]  # bench.autoscaler agrees
    return [str(BIN / words[0]), *(str(town) if w == "/town" else w for w in words[1:])]


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
def test_the_autoscaler_loop_scales_up_loses_nothing_and_scales_to_zero(
        tmp_path: Path, town_name: str, redis_url: str, sync_redis: redis.Redis, streams: bool) -> None:
    tasks, kills = (1000, 12) if LONG else (100, 3)
    fake_town(tmp_path, town_name, redis_url, streams=streams, idle_timeout=3, heartbeat=1, visibility=5,
              stale_after=3)
    config = tmp_path / "tinytown.toml"
    config.write_text(config.read_text().replace("max_agents = 10", f"max_agents = {MAX_AGENTS}"))
    keys = TownKeys(town_name)
    townhall = TownhallProcess(tmp_path).start()
    log_path = tmp_path / ".tt" / "logs" / "scaled-workers.log"
    log = log_path.open("ab")
    scaler = Autoscaler(townhall.url, doc_worker_command(tmp_path), log=log)
    rng = random.Random(12)
    killed: set[int] = set()
    try:
        with httpx.Client(base_url=townhall.url, timeout=10) as client:
            ids = [client.post("/v1/backlog", json={"description": f"job {i} SLEEP=0.2"}).json()["task_id"]
                   for i in range(tasks)]

        def all_completed() -> bool:
            with sync_redis.pipeline(transaction=False) as pipe:
                for task_id in ids:
                    pipe.hget(keys.task(task_id), "state")
                return all(state == "completed" for state in pipe.execute())

        signals: list[dict[str, object]] = []
        deadline_ticks = 600 if LONG else 150
        for _ in range(deadline_ticks):
            got = scaler.tick()
            if got is not None:
                signals.append(got)
            if all_completed():
                break
            live = [p for p in scaler.running if p.poll() is None and p.pid not in killed]
            # The first kill at the first chance (on a fast machine the work may be done before a coin
            # flip comes up), later ones at random.
            if len(killed) < kills and len(live) >= 2 and (not killed or rng.random() < 0.3):
                victim = rng.choice(live)
                victim.send_signal(signal.SIGKILL)
                killed.add(victim.pid)
            time.sleep(1)  # the scaler's poll period, as KEDA's pollingInterval
        assert all_completed(), "not every task completed"
        assert scaler.most > 1
        assert 1 <= len(killed) <= kills
        assert any(s["scaling_recommendation"] == "scale_up" for s in signals)
        # Completed exactly once: the completion counter counts each task once, however often it ran.
        assert int(sync_redis.get(keys.tasks_completed_total) or 0) == tasks

        # Afterwards: every worker idles out with 0, the signal says scale_to_zero, no records left.
        def at_zero() -> bool:
            got = scaler.tick()
            return bool(got and got["scaling_recommendation"] == "scale_to_zero" and not scaler.running)
        wait_for(at_zero, timeout=60, interval=1)
        # A replacement started while a killed worker's heartbeat is still fresh finds the town full
        # (max_agents) and exits 1, as a crash-looping replica would; every other worker exits 0.
        refused = log_path.read_text(errors="replace").count(f"max_agents ({MAX_AGENTS}) reached")
        exits = sorted(code for code in scaler.exits if code != -signal.SIGKILL)
        assert exits == sorted([0] * (scaler.started - len(killed) - refused) + [1] * refused)
        wait_for(lambda: not sync_redis.smembers(keys.agent_index), timeout=20)
    finally:
        for proc in scaler.running:
            proc.kill()
        townhall.stop()
        log.close()
