"""``GET /metrics`` (plugin ``metrics``, exporter ``prometheus``): reference §11.1 scenarios 15–16, every
§9.3 metric parsed with prometheus_client against a seeded town, the true completed counter, the 503
variant with Redis gone, HTTP/process metrics, OpenMetrics, and exporters as plugins."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
import redis.asyncio as aioredis
import yaml
from litestar import Request, get
from litestar.config.app import AppConfig
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from townhall import __version__, hookimpl
from townhall.domain import AgentState, Message, SUPERVISOR_ID, TaskBody, TaskState
from townhall.registry import ExporterSpec
from townhall.testing.inprocess import app_client
from townhall.testing.process import TownhallProcess, run_cli
from townhall.testing.redis_server import RedisServer
from townhall.testing.seed import TownSeed, wait_reconciled
from townhall.testing.towns import write_town
from townhall_auth_apikey import generate_api_key

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Reference §9.3, in its order: name, HELP text, type.
TOWN_METRICS = [
    ("tinytown_up", "Whether the townhall process is running.", "gauge"),
    ("tinytown_ready", "Whether townhall can reach its Redis-backed town state.", "gauge"),
    ("tinytown_agents_total", "Number of registered agents by state.", "gauge"),
    ("tinytown_tasks_pending", "Number of queued tasks across backlog and agent inboxes.", "gauge"),
    ("tinytown_tasks_completed_total", "Total completed tasks persisted in town state.", "counter"),
    ("tinytown_missions_active", "Number of active missions.", "gauge"),
    ("tinytown_redis_latency_seconds", "Redis round-trip latency for this scrape.", "gauge"),
    ("tinytown_backlog_tasks", "Tasks currently in the global backlog.", "gauge"),
    ("tinytown_tasks_assigned_pending", "Pending assigned tasks across all agents.", "gauge"),
    ("tinytown_urgent_messages", "Urgent inbox messages across all agents.", "gauge"),
]


def scrape(proc: TownhallProcess, status: int = 200, **kwargs: Any) -> str:
    response = httpx.get(f"{proc.url}/metrics", timeout=10, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    return response.text


def families(text: str) -> dict[str, Any]:
    """``{name: family}`` in exposition order (the parser strips a counter's ``_total``: put it back)."""
    found = {}
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" else family.name
        found[name] = family
    return found


def value(fams: dict[str, Any], name: str, **labels: str) -> float:
    [sample] = [s for s in fams[name].samples if s.labels == labels and not s.name.endswith("_created")]
    return sample.value


# ---- reference §11.1 ------------------------------------------------------------------------------


def test_scenario_15_probes_and_metrics_need_no_credentials(serve: Callable[..., TownhallProcess],
                                                            town_name: str) -> None:
    secret = generate_api_key()
    proc = serve(f'[townhall.auth]\nmode = "api_key"\napi_key_hash = "{secret.hash}"\n')
    for path in ("/health", "/healthz"):
        response = httpx.get(proc.url + path)
        assert (response.status_code, response.json()["status"]) == (200, "ok")
    for path in ("/ready", "/readyz"):
        response = httpx.get(proc.url + path)
        assert response.status_code == 200
        assert {k: response.json()[k] for k in ("status", "redis", "dispatcher", "town")} == {
            "status": "ready", "redis": "connected", "dispatcher": "idle", "town": town_name}
    text = scrape(proc)
    assert "tinytown_up 1" in text and "tinytown_ready 1" in text
    assert httpx.get(proc.url + "/api/scaling").status_code == 200


async def test_scenario_16_metrics_report_the_town(seed: TownSeed, serve: Callable[..., TownhallProcess]) -> None:
    first = await seed.agent("worker-1")
    await seed.agent("worker-2")
    await seed.backlog_task()
    await seed.assigned_task(first)
    await seed.task(TaskState.COMPLETED)
    await seed.active_mission()
    text = scrape(serve())
    for expected in ('tinytown_agents_total{state="starting"} 2', "tinytown_tasks_pending 2",
                     "tinytown_tasks_completed_total 1", "tinytown_missions_active 1",
                     "tinytown_redis_latency_seconds ", "tinytown_backlog_tasks 1", "tinytown_up 1",
                     "tinytown_ready 1"):
        assert expected in text


# ---- every metric, parsed ---------------------------------------------------------------------------


async def test_every_town_metric_parses_with_names_help_types_order_and_values(
    seed: TownSeed, serve: Callable[..., TownhallProcess]
) -> None:
    idle = await seed.agent("idle-1", AgentState.IDLE, idle_for=timedelta(seconds=5))
    await seed.agent("idle-2", AgentState.IDLE)
    working = await seed.agent("busy", AgentState.WORKING)
    await seed.agent("frozen", AgentState.COLD)
    for _ in range(3):
        await seed.backlog_task()
    await seed.assigned_task(idle)
    await seed.assigned_task(working)
    done = await seed.assigned_task(working)
    await seed.store.tasks.transition(done.id, TaskState.COMPLETED)  # finished: no longer pending
    await seed.store.messages.send(Message.new(SUPERVISOR_ID, idle.id, TaskBody(description="plain task")))
    await seed.store.messages.send(Message.new(SUPERVISOR_ID, idle.id, TaskBody(description="hurry")), urgent=True)
    await seed.store.messages.send(Message.new(SUPERVISOR_ID, working.id, TaskBody(description="now")), urgent=True)
    for _ in range(4):
        await seed.task(TaskState.COMPLETED)
    await seed.task(TaskState.FAILED)
    await seed.active_mission()
    await seed.active_mission()

    text = scrape(serve())
    fams = families(text)
    assert [(name, f.documentation, f.type) for name, f in list(fams.items())[: len(TOWN_METRICS)]] == TOWN_METRICS
    assert [(s.labels["state"], s.value) for s in fams["tinytown_agents_total"].samples] == [
        ("cold", 1), ("idle", 2), ("working", 1)]
    assert {name: value(fams, name) for name, _, _ in TOWN_METRICS if name != "tinytown_agents_total"} == {
        "tinytown_up": 1, "tinytown_ready": 1, "tinytown_tasks_pending": 6, "tinytown_tasks_completed_total": 5,
        "tinytown_missions_active": 2, "tinytown_redis_latency_seconds": pytest.approx(0, abs=1.0),
        "tinytown_backlog_tasks": 3, "tinytown_tasks_assigned_pending": 3, "tinytown_urgent_messages": 2,
    }
    assert 0 < value(fams, "tinytown_redis_latency_seconds") < 1
    assert value(fams, "tinytown_build_info", version=__version__) == 1
    assert "process_resident_memory_bytes" in fams and "process_cpu_seconds_total" in fams
    assert "_created" not in text


def test_empty_town_has_no_agent_samples(serve: Callable[..., TownhallProcess]) -> None:
    fams = families(scrape(serve()))
    assert fams["tinytown_agents_total"].samples == []
    assert value(fams, "tinytown_tasks_pending") == 0


async def test_completed_counter_never_decreases_when_tasks_are_deleted(
    seed: TownSeed, aredis: aioredis.Redis, town_name: str, serve: Callable[..., TownhallProcess]
) -> None:
    proc = serve()
    await wait_reconciled(aredis, town_name)
    first = await seed.task(TaskState.COMPLETED)
    running = await seed.task(TaskState.RUNNING)
    assert value(families(scrape(proc)), "tinytown_tasks_completed_total") == 1
    await seed.store.tasks.transition(running.id, TaskState.COMPLETED)
    assert value(families(scrape(proc)), "tinytown_tasks_completed_total") == 2
    assert await seed.store.tasks.delete(first.id)
    await aredis.delete(seed.store.keys.task(running.id))  # another tool, behind our back
    assert value(families(scrape(proc)), "tinytown_tasks_completed_total") == 2


async def test_completed_counter_survives_a_restart_after_deletes(
    seed: TownSeed, aredis: aioredis.Redis, town_name: str, serve: Callable[..., TownhallProcess]
) -> None:
    tasks = [await seed.task(TaskState.COMPLETED) for _ in range(3)]
    await seed.store.tasks.delete(tasks[0].id)
    proc = serve()
    await wait_reconciled(aredis, town_name)
    assert value(families(scrape(proc)), "tinytown_tasks_completed_total") == 3


# ---- Redis unreachable: 200 (or 503) with the zero variant --------------------------------------------


def assert_zero_variant(text: str) -> None:
    fams = families(text)
    assert [(n, f.documentation, f.type) for n, f in list(fams.items())[: len(TOWN_METRICS)]] == TOWN_METRICS
    assert fams["tinytown_agents_total"].samples == [] and fams["tinytown_agents"].samples == []
    assert value(fams, "tinytown_up") == 1
    assert all(value(fams, name) == 0 for name, _, _ in TOWN_METRICS[1:] if name != "tinytown_agents_total")
    assert value(fams, "tinytown_redis_up") == 0
    assert "tinytown_redis_latency_seconds 0.0\n" in text
    last = text.rstrip("\n").splitlines()[-1]
    assert last.startswith("# tinytown_metrics_error Redis ping failed: ")
    assert text.endswith("\n")


def test_unreachable_redis_gives_200_with_the_zero_variant_so_prometheus_stores_it(
    own_redis_townhall: tuple[RedisServer, TownhallProcess],
) -> None:
    server, proc = own_redis_townhall
    assert value(families(scrape(proc)), "tinytown_redis_up") == 1
    server.kill()
    assert_zero_variant(scrape(proc, status=200))
    server.start()
    fams = families(scrape(proc))
    assert value(fams, "tinytown_ready") == 1 and value(fams, "tinytown_redis_up") == 1


def test_outage_status_503_restores_the_upstream_answer(tmp_path: Path, town_name: str) -> None:
    server = RedisServer(tmp_path / "redis-own")
    server.directory.mkdir()
    server.start()
    write_town(tmp_path, town_name, redis_url=server.url, extra="[townhall.metrics]\noutage_status = 503\n")
    proc = TownhallProcess(tmp_path).start()
    try:
        scrape(proc)
        server.kill()
        assert_zero_variant(scrape(proc, status=503))
    finally:
        proc.stop()
        server.stop()


async def test_the_agents_gauge_has_a_correctly_named_twin(serve: Callable[..., TownhallProcess],
                                                           seed: TownSeed) -> None:
    await seed.agent("worker-1")
    await seed.agent("worker-2")
    proc = serve()
    fams = families(scrape(proc))
    assert fams["tinytown_agents"].type == "gauge"
    twin = [(x.labels, x.value) for x in fams["tinytown_agents"].samples]
    assert twin == [(x.labels, x.value) for x in fams["tinytown_agents_total"].samples] and twin[0][1] == 2


def test_the_documented_alert_rules_name_only_metrics_townhall_serves(serve: Callable[..., TownhallProcess]) -> None:
    rules_file = Path(__file__).resolve().parents[3] / "docs" / "prometheus-alerts.yml"
    rules = [rule for group in yaml.safe_load(rules_file.read_text())["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == {"TownhallDown", "TownRedisUnreachable",
                                                  "TownWorkWaitingWithoutWorkers", "TownUrgentMessagesPiling"}
    served = set(families(scrape(serve())))
    named = {name for rule in rules for name in re.findall(r"\btinytown_[a-z_]+", rule["expr"])}
    assert named and named <= served
    promtool = shutil.which("promtool")
    if promtool is not None:
        checked = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


# ---- HTTP and OpenMetrics --------------------------------------------------------------------------------


def test_http_requests_are_counted_by_route_template_method_and_status(
    serve: Callable[..., TownhallProcess],
) -> None:
    proc = serve()
    for _ in range(2):
        httpx.get(proc.url + "/api/scaling")
    assert httpx.get(proc.url + "/no/such/route/123").status_code == 404
    assert httpx.post(proc.url + "/api/scaling").status_code == 405
    fams = families(scrape(proc))
    requests = fams["tinytown_http_requests_total"]
    assert value(fams, "tinytown_http_requests_total", route="/api/scaling", method="GET", status="200") == 2
    assert value(fams, "tinytown_http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert value(fams, "tinytown_http_requests_total", route="<unmatched>", method="POST", status="405") == 1
    assert not any("123" in s.labels["route"] for s in requests.samples)
    duration = fams["tinytown_http_request_duration_seconds"]
    assert duration.type == "histogram"
    [count] = [s for s in duration.samples if s.name.endswith("_count") and s.labels["route"] == "/api/scaling"]
    assert count.value == 2


def test_openmetrics_when_the_scraper_asks(serve: Callable[..., TownhallProcess]) -> None:
    proc = serve()
    response = httpx.get(proc.url + "/metrics", headers={
        "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.text.endswith("# EOF\n")
    parsed = {f.name: f for f in parse_openmetrics(response.text)}
    assert parsed["tinytown_tasks_completed"].type == "counter"
    assert parsed["tinytown_up"].samples[0].value == 1


# ---- exporters are plugins ---------------------------------------------------------------------------------


class OtelLikeExporter:
    """A second exporter, as an OpenTelemetry package could provide: its own route, no core change."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        ctx = self.ctx

        @get("/otel-metrics", sync_to_thread=False)
        def otel_metrics() -> dict[str, Any]:
            return {"town": ctx.town.name, "exporter": "otel"}

        @get("/otel-metrics/{series:str}", sync_to_thread=False)
        def otel_series(request: Request[Any, Any, Any]) -> dict[str, str]:
            return {"series": request.path_params["series"]}

        app_config.route_handlers += [otel_metrics, otel_series]
        return app_config


class OtelPlugin:
    @hookimpl
    def townhall_register_metrics_exporters(self, register: Callable[[ExporterSpec], None]) -> None:
        register(ExporterSpec(name="otel", factory=OtelLikeExporter, summary="test exporter"))


async def test_a_second_exporter_plugin_works_alongside_prometheus(town_dir: Path, town_name: str) -> None:
    async with app_client(town_dir, extra=[("otel_test", OtelPlugin())]) as client:
        assert (await client.get("/otel-metrics")).json() == {"town": town_name, "exporter": "otel"}
        assert (await client.get("/otel-metrics/cpu-7")).json() == {"series": "cpu-7"}
        response = await client.get("/metrics")
        assert (response.status_code, response.headers["content-type"]) == (200, CONTENT_TYPE)
        fams = families(response.text)
        assert value(fams, "tinytown_http_requests_total", route="/otel-metrics/{series}", method="GET",
                     status="200") == 1


async def test_exporters_are_chosen_by_config(town_dir: Path, town_name: str, redis_url: str) -> None:
    write_town(town_dir, town_name, redis_url=redis_url, extra='[townhall.metrics]\nexporters = ["otel"]\n')
    async with app_client(town_dir, extra=[("otel_test", OtelPlugin())]) as client:
        assert (await client.get("/otel-metrics")).status_code == 200
        assert (await client.get("/metrics")).status_code == 404
    write_town(town_dir, town_name, redis_url=redis_url, extra="[townhall.metrics]\nexporters = []\n")
    async with app_client(town_dir) as client:
        assert (await client.get("/metrics")).status_code == 404


def test_an_unknown_exporter_stops_startup(town_dir: Path, town_name: str, redis_url: str) -> None:
    write_town(town_dir, town_name, redis_url=redis_url, extra='[townhall.metrics]\nexporters = ["statsd"]\n')
    result = run_cli("--town", str(town_dir), "rest", "--port", "0")
    assert result.returncode == 1
    assert "unknown metrics exporter 'statsd' (installed: prometheus)" in result.stderr
