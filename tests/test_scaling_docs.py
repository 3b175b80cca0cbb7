"""docs/autoscaling.md matches the real ``/api/scaling``: every KEDA example's JSON path, the sample body."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import yaml

from townhall.testing.process import TownhallProcess

DOC = Path(__file__).resolve().parents[1] / "docs" / "autoscaling.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def metrics_api_triggers() -> list[dict[str, Any]]:
    found = []
    for text in blocks("yaml"):
        for doc in yaml.safe_load_all(text):
            found += [t for t in doc.get("spec", {}).get("triggers", []) if t["type"] == "metrics-api"]
    return found


def test_every_keda_example_reads_a_field_of_the_live_response(townhall: TownhallProcess) -> None:
    live = httpx.get(f"{townhall.url}/api/scaling").json()
    triggers = metrics_api_triggers()
    assert {t["metadata"]["valueLocation"] for t in triggers} >= {"queue_depth", "desired_agents"}
    for trigger in triggers:
        meta = trigger["metadata"]
        assert urlparse(meta["url"]).path == "/api/scaling"
        assert meta["format"] == "json"
        assert isinstance(live[meta["valueLocation"]], int), meta["valueLocation"]
        assert int(meta["targetValue"]) >= 1


def test_the_sample_body_has_exactly_the_live_fields(townhall: TownhallProcess) -> None:
    live = httpx.get(f"{townhall.url}/api/scaling").json()
    [sample] = [json.loads(b) for b in blocks("json")]
    assert list(sample) == list(live)
    assert {k: type(v) for k, v in sample.items()} == {k: type(v) for k, v in live.items()}


def test_shell_examples_and_the_bench_scaler_use_real_fields(townhall: TownhallProcess) -> None:
    # The doc's Python loop became bench/autoscaler.py (issue 12), which the reliability suite runs.
    live = httpx.get(f"{townhall.url}/api/scaling").json()
    scaler = (DOC.parents[1] / "bench" / "autoscaler.py").read_text()
    used = set(re.findall(r'signal\["(\w+)"\]', scaler))
    for line in "\n".join(blocks("sh")).splitlines():
        if " jq " in line:
            for program in re.findall(r"jq (?:-r )?'?([^'|)]*)", line):
                used |= set(re.findall(r"(?<![\w/])\.([a-z_]+)", program))
    assert {"desired_agents", "active_agents", "scaling_recommendation"} <= used <= set(live)
