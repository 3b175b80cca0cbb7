"""The dashboard's routes over HTTP: the page and its policy, the panels' scope, escaping, bad input."""

from __future__ import annotations

from pathlib import Path

from townhall.domain import TaskState
from townhall.testing.inprocess import app_client
from townhall.testing.seed import TownSeed
from townhall_dashboard.routes import CSP

XSS = "<img src=x onerror=alert(1)>"


async def test_root_redirects_to_the_page_which_has_a_strict_policy(town_dir: Path) -> None:
    async with app_client(town_dir) as client:
        root = await client.get("/", follow_redirects=False)
        assert root.status_code == 302 and root.headers["location"] == "/ui"
        page = await client.get("/ui")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text and "style=" not in page.text and "<style" not in page.text
    assert 'src="/ui/static/dashboard.js"' in page.text


async def test_every_value_from_users_and_agents_is_escaped(town_dir: Path, seed: TownSeed) -> None:
    agent = await seed.agent(XSS)
    await seed.assigned_task(agent, XSS)
    await seed.backlog_task(f"backlog {XSS}")
    async with app_client(town_dir) as client:
        panels = await client.get("/ui/panels")
    assert panels.status_code == 200, panels.text
    assert XSS not in panels.text
    assert panels.text.count("&lt;img src=x onerror=alert(1)&gt;") >= 3  # the agent, its task, the backlog


async def test_panels_offer_cancel_and_retry_where_they_apply(town_dir: Path, seed: TownSeed) -> None:
    agent = await seed.agent("alice")
    task = await seed.assigned_task(agent, "assigned work")
    async with app_client(town_dir) as client:
        html = (await client.get("/ui/panels", params={"show": "tasks"})).text
        assert f'data-action="cancel" data-task="{task.id}"' in html
        assert 'data-panel="agents"' not in html
        only_failed = (await client.get("/ui/panels", params={"show": "tasks", "state": "failed"})).text
        assert task.id not in only_failed


async def test_bad_panel_queries_are_422_naming_the_parameter(town_dir: Path) -> None:
    async with app_client(town_dir) as client:
        for params in ({"state": "finished"}, {"show": "everything"}):
            answer = await client.get("/ui/panels", params=params)
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert [e["field"] for e in answer.json()["errors"]] == list(params), answer.json()


async def test_the_assets_are_the_packages_own(town_dir: Path) -> None:
    async with app_client(town_dir) as client:
        script = await client.get("/ui/static/dashboard.js")
        style = await client.get("/ui/static/dashboard.css")
        missing = await client.get("/ui/static/nope.js")
    assert script.status_code == 200 and "textContent" in script.text
    assert "innerHTML" not in script.text.replace("holder.innerHTML", "")  # only server-rendered panels
    assert style.status_code == 200
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    assert not [s for s in TaskState if f'value="{s.value}"' in script.text]  # states come from the page
