"""Issue 14 item 14 against a real townhall process: a preset with ``allowed_scopes`` can only be
targeted (spawn, assign, backlog claim/assign-all) by callers holding one of those scopes."""

from __future__ import annotations

from typing import Callable

import httpx

from townhall.auth import Scope
from townhall.testing.process import TownhallProcess
from townhall_auth_apikey.testing import api_keys_toml, make_key

Serve = Callable[..., TownhallProcess]

PRESETS = """
[agent_clis.yolo]
name = "yolo"
command = "claude --dangerously-skip-permissions"
allowed_scopes = ["admin"]

[agent_clis.careful]
name = "careful"
command = "claude"
"""


def test_a_restricted_preset_needs_its_scope(serve: Serve) -> None:
    writer = make_key("writer", Scope.TOWN_READ, Scope.TOWN_WRITE)
    manager = make_key("manager", Scope.TOWN_READ, Scope.TOWN_WRITE, Scope.AGENT_MANAGE)
    admin = make_key("admin", Scope.ADMIN)
    proc = serve(api_keys_toml([writer, manager, admin]) + PRESETS)
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        def as_(key, method: str, path: str, **body: object) -> httpx.Response:  # type: ignore[no-untyped-def]
            return client.request(method, path, json=body or None, headers=key.bearer())

        # Spawning needs agent.manage anyway; the restricted preset needs admin on top.
        spawn = as_(manager, "POST", "/v1/agents", name="bold2", cli="yolo")
        assert spawn.status_code == 403 and "yolo" in spawn.json()["detail"], spawn.text
        assert as_(admin, "POST", "/v1/agents", name="bold", cli="yolo").status_code == 201
        assert as_(manager, "POST", "/v1/agents", name="calm", cli="careful").status_code == 201
        # town.write: work for an agent running the restricted preset is out of reach however it is sent.
        for key in (writer, manager):
            assert as_(key, "POST", "/v1/tasks/assign", agent="bold", task="rm -rf /").status_code == 403
        task = as_(writer, "POST", "/v1/backlog", description="queued").json()["task_id"]
        assert as_(writer, "POST", f"/v1/backlog/{task}/claim", agent="bold").status_code == 403
        assert as_(writer, "POST", "/v1/backlog/assign-all", agent="bold").status_code == 403
        assert [t["task_id"] for t in as_(writer, "GET", "/v1/backlog").json()["backlog"]] == [task]
        # Unrestricted presets, and callers holding the scope, are served as before.
        assert as_(writer, "POST", "/v1/tasks/assign", agent="calm", task="tidy up").status_code == 201
        assert as_(admin, "POST", "/v1/tasks/assign", agent="bold", task="go").status_code == 201
        assert as_(admin, "POST", f"/v1/backlog/{task}/claim", agent="bold").status_code == 200
