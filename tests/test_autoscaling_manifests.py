"""docs/autoscaling.md as written (issue 12): every manifest parses; the Kubernetes core kinds validate
against the Kubernetes schemas (``kubernetes-validate``, strict: no unknown field); KEDA's objects use
only the fields KEDA documents and read fields ``/api/scaling`` has; the replica command is the same
everywhere and runs; the Cloud Run poller and ``gcloud`` commands run against a real townhall with a
stand-in ``gcloud``."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from tests.support.workers import executions, fake_town, start_pool_worker, wait_for
from townhall.config import load_town
from townhall.services.scaling import ScalingSignal
from townhall.testing.process import BIN, TownhallProcess

DOC = Path(__file__).parents[1] / "docs" / "autoscaling.md"
K8S_VERSION = "1.30.0"
REPLICA = ["townhall", "--town", "/town", "worker"]

# KEDA's documented fields (keda.sh/docs: ScaledObject and ScaledJob specifications, metrics-api scaler).
KEDA_SCALED_OBJECT = {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
                      "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers"}
KEDA_SCALE_TARGET_REF = {"apiVersion", "kind", "name", "envSourceContainerName"}
KEDA_SCALED_JOB = {"jobTargetRef", "pollingInterval", "successfulJobsHistoryLimit", "failedJobsHistoryLimit",
                   "envSourceContainerName", "minReplicaCount", "maxReplicaCount", "rolloutStrategy", "rollout",
                   "scalingStrategy", "triggers"}
KEDA_TRIGGER = {"type", "metadata", "name", "useCachedMetrics", "authenticationRef", "metricType"}
METRICS_API = {"url", "format", "valueLocation", "targetValue", "activationTargetValue", "authMode", "unsafeSsl"}


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def manifests() -> list[dict[str, Any]]:
    return [doc for block in blocks("yaml") for doc in yaml.safe_load_all(block) if doc]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests() if m["kind"] == kind]


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_spec["containers"]


def test_every_manifest_parses_and_the_expected_objects_are_there() -> None:
    kinds = sorted((m["apiVersion"], m["kind"]) for m in manifests())
    assert kinds == sorted([
        ("v1", "Secret"), ("apps/v1", "Deployment"), ("v1", "Service"), ("apps/v1", "Deployment"),
        ("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "ScaledObject"),
        ("keda.sh/v1alpha1", "ScaledJob"), ("serving.knative.dev/v1", "Service"),
    ])


@pytest.mark.parametrize("index", range(len([m for m in manifests() if m["apiVersion"] in ("v1", "apps/v1")])))
def test_core_kinds_validate_against_the_kubernetes_schema(index: int) -> None:
    manifest = [m for m in manifests() if m["apiVersion"] in ("v1", "apps/v1")][index]
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_keda_objects_use_documented_fields_and_read_real_signal_fields() -> None:
    signal_fields = set(ScalingSignal.__struct_fields__)
    deployments = {m["metadata"]["name"] for m in by_kind("Deployment")}
    for scaled in by_kind("ScaledObject"):
        spec = scaled["spec"]
        assert set(spec) <= KEDA_SCALED_OBJECT
        assert set(spec["scaleTargetRef"]) <= KEDA_SCALE_TARGET_REF
        assert spec["scaleTargetRef"]["name"] in deployments
        assert spec["maxReplicaCount"] == 10  # = max_agents of the town in the doc
    for job in by_kind("ScaledJob"):
        spec = job["spec"]
        assert set(spec) <= KEDA_SCALED_JOB
        # jobTargetRef is a Job spec: validate it as one.
        kubernetes_validate.validate({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
                                      "spec": spec["jobTargetRef"]}, K8S_VERSION, strict=True)
    for scaled in [*by_kind("ScaledObject"), *by_kind("ScaledJob")]:
        for trigger in scaled["spec"]["triggers"]:
            assert set(trigger) <= KEDA_TRIGGER and trigger["type"] == "metrics-api"
            assert set(trigger["metadata"]) <= METRICS_API
            assert trigger["metadata"]["valueLocation"] in signal_fields
            assert trigger["metadata"]["url"].endswith("/api/scaling")


def test_cloud_run_service_is_a_valid_pod_template_with_probes_townhall_serves(townhall: TownhallProcess) -> None:
    [service] = [m for m in manifests() if m["apiVersion"] == "serving.knative.dev/v1"]
    spec = service["spec"]["template"]["spec"]
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": spec},
                                 K8S_VERSION, strict=True)
    [container] = containers(spec)
    assert container["command"] + container["args"][:3] == ["townhall", "--town", "/town", "rest"]
    for probe in ("startupProbe", "livenessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert httpx.get(f"{townhall.url}{path}", timeout=5).status_code == 200


def test_secrets_hold_what_the_pods_reference_and_the_town_config_loads(tmp_path: Path) -> None:
    [secret] = by_kind("Secret")
    data = secret["stringData"]
    for deployment in by_kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in containers(pod):
            for env in container.get("env", []):
                ref = env["valueFrom"]["secretKeyRef"]
                assert ref["name"] == secret["metadata"]["name"] and ref["key"] in data
            probes = {p: container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe") if p in container}
            assert probes in ({}, {"livenessProbe": "/health", "readinessProbe": "/ready"})
        for volume in pod["volumes"]:
            if "secret" in volume:
                assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    (tmp_path / "tinytown.toml").write_text(data["tinytown.toml"], encoding="utf-8")
    town = load_town(tmp_path, environ={"REDIS_URL": data["redis-url"]})
    assert town.config.max_agents == 10 and town.config.agent.launcher == "none"
    assert town.config.townhall.auth.mode == "api_key"


def test_the_replica_command_is_the_same_everywhere() -> None:
    commands = [c["command"] for d in by_kind("Deployment") for c in containers(d["spec"]["template"]["spec"])
                if "worker" in c["command"]]
    commands += [c["command"] for j in by_kind("ScaledJob") for c in containers(j["spec"]["jobTargetRef"]["template"]["spec"])]
    assert commands and all(command == REPLICA for command in commands)
    assert shlex.split(blocks("sh")[0]) == REPLICA
    create = next(b for b in blocks("sh") if "gcloud run jobs create" in b)
    assert "--command townhall --args=--town,/town,worker" in create


def test_the_replica_command_runs_as_a_pool_worker_and_exits_0_when_idle(
        tmp_path: Path, town_name: str, redis_url: str) -> None:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=1)
    command = [str(BIN / REPLICA[0]), *(str(tmp_path) if w == "/town" else w for w in REPLICA[1:])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "retired" in done.stderr


def fake_gcloud(tmp_path: Path) -> tuple[dict[str, str], Path]:
    calls = tmp_path / "gcloud-calls"
    script = tmp_path / "bin" / "gcloud"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{script.parent}:{os.environ['PATH']}"}, calls


def test_the_cloud_run_commands_run(tmp_path: Path, town_name: str, redis_url: str) -> None:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=0)
    env, calls = fake_gcloud(tmp_path)
    create = next(b for b in blocks("sh") if "gcloud run jobs create" in b)
    assert subprocess.run(["sh", "-c", create], env=env, timeout=30).returncode == 0
    assert "run jobs create tinytown-worker" in calls.read_text()
    poller = next(b for b in blocks("sh") if "/api/scaling" in b)
    proc = TownhallProcess(tmp_path).start()
    try:
        script = poller.replace("https://townhall-xyz.a.run.app", proc.url)
        assert subprocess.run(["sh", "-c", script], env=env, timeout=30).returncode == 0
        assert "jobs execute" not in calls.read_text()  # nothing to do: no call
        for i in range(2):
            httpx.post(f"{proc.url}/v1/backlog", json={"description": f"t{i}"}, timeout=5).raise_for_status()
        assert subprocess.run(["sh", "-c", script], env=env, timeout=30).returncode == 0
        assert "run jobs execute tinytown-worker --tasks 2 --async" in calls.read_text()
        worker = start_pool_worker(tmp_path)  # what an execution's task runs
        wait_for(lambda: len(executions(tmp_path)) == 2)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        proc.stop()
