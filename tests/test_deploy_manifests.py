"""Issue 15 item 6: ``deploy/`` as shipped. Every manifest parses; the Kubernetes core kinds validate
against the Kubernetes schemas (strict); the KEDA object uses KEDA's documented fields and reads
``queue_depth`` from ``/api/scaling``; the commands in the Dockerfile, the compose file and the manifests
are ones the CLI accepts; the environment variables are ones the config loader reads, and the values
they carry end up in the town's config; the town files load without warnings; the image's healthcheck
passes against a real townhall. (Docker itself may not run here: nothing is built.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.test_autoscaling_manifests import (
    K8S_VERSION,
    KEDA_SCALE_TARGET_REF,
    KEDA_SCALED_OBJECT,
    KEDA_TRIGGER,
    METRICS_API,
    REPLICA,
)
from townhall.cli.common import cli_plugins
from townhall.config import load_town
from townhall.services.scaling import ScalingSignal
from townhall.testing.process import BIN, TownhallProcess

DEPLOY = Path(__file__).parents[1] / "deploy"
KUBE = DEPLOY / "kubernetes"
#: The environment variables the product reads for a town (docs/configuration.md, "Environment").
TOWN_ENV = {"REDIS_URL", "TINYTOWN_REDIS_PASSWORD"}


def manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted(KUBE.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests() if m["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    [found] = [m for m in by_kind(kind) if m["metadata"]["name"] == name]
    return found


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def secret_data() -> dict[str, str]:
    return named("Secret", "tinytown")["stringData"]


def env_values(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment with secret references resolved from the Secret of the manifests."""
    values: dict[str, str] = {}
    for env in container.get("env", []):
        if "value" in env:
            values[env["name"]] = env["value"]
        else:
            ref = env["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "tinytown" and ref["key"] in secret_data(), env
            values[env["name"]] = secret_data()[ref["key"]]
    return values


def check_town_file(text: str, root: Path, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    (root / "tinytown.toml").write_text(text, encoding="utf-8")
    registry = cli_plugins().registry
    town = load_town(root, environ=environ or {}, plugin_tables=registry.config_sections)
    assert town.warnings + registry.check_config(town) == []
    return town


def accepted_by_the_cli(command: list[str], town: Path) -> None:
    """``command`` with the town directory swapped in and ``--help`` added exits 0: the program, the
    options before the subcommand and the subcommand are all ones the CLI knows."""
    assert command[0] == "townhall" and command[1:3] == ["--town", "/town"], command
    done = subprocess.run([str(BIN / "townhall"), "--town", str(town), *command[3:], "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (command, done.stderr)


def test_every_manifest_parses_and_the_expected_objects_are_there() -> None:
    kinds = sorted((m["apiVersion"], m["kind"], m["metadata"]["name"]) for m in manifests())
    assert kinds == sorted([
        ("v1", "Namespace", "tinytown"), ("v1", "Secret", "tinytown"),
        ("apps/v1", "StatefulSet", "redis"), ("v1", "Service", "redis"),
        ("apps/v1", "Deployment", "townhall"), ("v1", "Service", "townhall"),
        ("apps/v1", "Deployment", "tinytown-worker"), ("keda.sh/v1alpha1", "ScaledObject", "tinytown-workers"),
    ])
    assert {m["metadata"].get("namespace", "tinytown") for m in manifests()} == {"tinytown"}


@pytest.mark.parametrize("index", range(len([m for m in manifests() if m["apiVersion"] in ("v1", "apps/v1")])))
def test_core_kinds_validate_against_the_kubernetes_schema(index: int) -> None:
    manifest = [m for m in manifests() if m["apiVersion"] in ("v1", "apps/v1")][index]
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_townhall_runs_two_replicas_with_probes_it_serves_behind_its_service(tmp_path: Path) -> None:
    deployment = named("Deployment", "townhall")
    assert deployment["spec"]["replicas"] == 2
    town = check_town_file(secret_data()["tinytown.toml"], tmp_path)
    [container] = pod_spec(deployment)["containers"]
    port = town.config.townhall.rest_port
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": port}
    service = named("Service", "townhall")
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["ports"][0]["targetPort"] == port
    # The API key's hash reaches the pod from the Secret: the config file is mounted from it.
    assert town.config.townhall.auth.mode == "api_key" and "api_key_hash" in secret_data()["tinytown.toml"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    config = mounts["/town/tinytown.toml"]
    [volume] = [v for v in pod_spec(deployment)["volumes"] if v["name"] == config["name"]]
    assert volume["secret"]["secretName"] == "tinytown" and config["subPath"] == "tinytown.toml"


def test_the_pods_run_as_the_images_non_root_user() -> None:
    user = re.search(r"^USER (\d+)", (DEPLOY / "Dockerfile").read_text(), flags=re.M)
    assert user is not None and user.group(1) != "0"
    for workload in (named("Deployment", "townhall"), named("Deployment", "tinytown-worker")):
        context = pod_spec(workload)["securityContext"]
        assert context["runAsNonRoot"] is True and str(context["runAsUser"]) == user.group(1)


def test_the_commands_are_ones_the_cli_accepts(tmp_path: Path) -> None:
    check_town_file(secret_data()["tinytown.toml"], tmp_path)
    commands = [c["command"] for kind in ("Deployment",) for d in by_kind(kind) for c in pod_spec(d)["containers"]]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    commands += [s["command"] for name, s in compose["services"].items() if name.startswith(("townhall", "worker"))]
    commands.append(json.loads(re.search(r"^CMD (\[.*\])$", (DEPLOY / "Dockerfile").read_text(), flags=re.M)[1]))
    assert len(commands) == 6
    for command in commands:
        accepted_by_the_cli(command, tmp_path)
    workers = [c for c in commands if "worker" in c]
    assert workers and all(c == REPLICA for c in workers)  # a pool worker, as in docs/autoscaling.md


def test_the_environment_is_what_the_config_loader_reads(tmp_path: Path) -> None:
    for name in ("townhall", "tinytown-worker"):
        [container] = pod_spec(named("Deployment", name))["containers"]
        environ = env_values(container)
        assert set(environ) <= TOWN_ENV, environ
        town = check_town_file(secret_data()["tinytown.toml"], tmp_path, environ)
        assert town.config.redis.url == environ["REDIS_URL"]
        assert town.config.redis.password == secret_data()["redis-password"]
    [redis] = pod_spec(named("StatefulSet", "redis"))["containers"]
    assert "$(REDIS_PASSWORD)" in redis["args"] and set(env_values(redis)) == {"REDIS_PASSWORD"}
    assert named("Service", "redis")["spec"]["ports"][0]["port"] == 6379
    assert "redis.tinytown.svc:6379" in environ["REDIS_URL"]


def test_keda_scales_the_worker_pool_on_queue_depth(tmp_path: Path) -> None:
    scaled = named("ScaledObject", "tinytown-workers")
    spec = scaled["spec"]
    assert set(spec) <= KEDA_SCALED_OBJECT and set(spec["scaleTargetRef"]) <= KEDA_SCALE_TARGET_REF
    assert spec["scaleTargetRef"]["name"] == "tinytown-worker"
    town = check_town_file(secret_data()["tinytown.toml"], tmp_path)
    assert spec["maxReplicaCount"] == town.config.max_agents
    [trigger] = spec["triggers"]
    assert set(trigger) <= KEDA_TRIGGER and trigger["type"] == "metrics-api"
    assert set(trigger["metadata"]) <= METRICS_API
    assert trigger["metadata"]["valueLocation"] == "queue_depth" in ScalingSignal.__struct_fields__
    service = named("Service", "townhall")["metadata"]
    assert trigger["metadata"]["url"] == (f"http://{service['name']}.{service['namespace']}.svc:"
                                          f"{town.config.townhall.rest_port}/api/scaling")


def test_compose_puts_two_townhalls_behind_one_port_with_redis_and_workers(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "townhall-a", "townhall-b", "worker", "lb"}
    published = [name for name, s in services.items() if s.get("ports")]
    assert published == ["lb"] and services["lb"]["ports"] == ["8080:8080"]
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert re.findall(r"server (townhall-[ab]):8080", nginx) == ["townhall-a", "townhall-b"]
    town_text = (DEPLOY / "tinytown.toml").read_text()
    for name in ("townhall-a", "townhall-b", "worker"):
        service = services[name]
        assert "./town.toml:/town/tinytown.toml:ro" in service["volumes"]
        environ = {k: v.replace("${REDIS_PASSWORD:?set REDIS_PASSWORD}", "pw") for k, v in service["environment"].items()}
        assert set(environ) <= TOWN_ENV
        town = check_town_file(town_text, tmp_path, environ)
        assert town.config.redis.url == "redis://redis:6379/0" and town.config.redis.password == "pw"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert town.config.townhall.rest_port == 8080 and town.config.agent.launcher == "none"
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert "--requirepass" in services["redis"]["command"]


def test_the_images_healthcheck_passes_against_a_real_townhall(townhall: TownhallProcess) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    check = json.loads(re.search(r"CMD (\[.*\])\s*$", dockerfile.split("HEALTHCHECK", 1)[1].split("\n\n")[0],
                                 flags=re.S)[1])
    assert check[0] == "python" and "http://127.0.0.1:8080/health" in check[2]
    script = check[2].replace("http://127.0.0.1:8080", townhall.url)
    assert subprocess.run([sys.executable, *check[1:2], script], timeout=30).returncode == 0
    assert re.search(r"^EXPOSE 8080$", dockerfile, flags=re.M)
