"""The dashboard in a real headless Chromium (the system's, through Playwright) against a real townhall
process; every request to another host is refused and recorded, so each test also proves the page works
offline."""

from __future__ import annotations

from typing import Callable

import httpx
from playwright.sync_api import Page, expect

from townhall.auth import Scope
from townhall.testing.browser import OfflinePage
from townhall.testing.process import TownhallProcess
from townhall_auth_apikey.testing import api_keys_toml, make_key

Serve = Callable[..., TownhallProcess]
XSS = "<img src=x onerror=alert(1)>"
WAIT_MS = 10_000


def spawn(client: httpx.Client, name: str, nickname: str | None = None) -> None:
    body = {"name": name} | ({"nickname": nickname} if nickname else {})
    assert client.post("/v1/agents", json=body).status_code == 201


def assign(client: httpx.Client, agent: str, description: str) -> str:
    answer = client.post("/v1/tasks/assign", json={"agent": agent, "task": description})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["task_id"])


def no_dialogs(page: Page) -> list[str]:
    opened: list[str] = []

    def record(dialog: object) -> None:
        opened.append(getattr(dialog, "message", ""))
        dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", record)
    return opened


def test_the_dashboard_loads_offline_and_shows_the_town(serve: Serve, offline_page: OfflinePage) -> None:
    proc = serve()
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        spawn(client, "alice", nickname="Ada")
        spawn(client, "bob")
        assign(client, "alice", XSS)
        assert client.post("/v1/backlog", json={"description": f"later {XSS}", "tags": ["docs"]}).status_code == 201
    page = offline_page.page
    dialogs = no_dialogs(page)
    page.goto(proc.url + "/")  # redirects to /ui
    assert page.url == proc.url + "/ui"
    agents = page.locator(".panel-body[data-panel='agents']")
    expect(agents.locator("tr[data-agent='alice']")).to_contain_text("Ada", timeout=WAIT_MS)
    expect(agents.locator("tr[data-agent='bob']")).to_contain_text("Starting")
    town = page.locator(".panel-body[data-panel='town']")
    expect(town.locator("[data-field='readiness']")).to_contain_text("ready")
    expect(town.locator("[data-field='queue_depth']")).to_have_text("2")  # one assigned, one in the backlog
    expect(town.locator("[data-field='workers']")).to_contain_text("/ 2")
    # The task text arrives as text, in the tasks table and as alice's current work; nothing ran.
    tasks = page.locator(".panel-body[data-panel='tasks']")
    expect(tasks.get_by_text(XSS, exact=True)).to_have_count(1)
    expect(page.locator(".panel-body[data-panel='backlog']").get_by_text(f"later {XSS}")).to_have_count(1)
    assert page.locator("main img").count() == 0
    assert dialogs == []
    offline_page.assert_clean()


def test_the_auth_prompt_in_api_key_mode(serve: Serve, offline_page: OfflinePage) -> None:
    reader, writer = make_key("viewer", Scope.TOWN_READ), make_key("operator", Scope.TOWN_READ, Scope.TOWN_WRITE)
    proc = serve(api_keys_toml([reader, writer]))
    with httpx.Client(base_url=proc.url, timeout=10, headers=writer.bearer()) as client:
        assert client.post("/v1/backlog", json={"description": "queued"}).status_code == 201
    page = offline_page.page
    panel_requests: list[str] = []
    page.on("request", lambda r: panel_requests.append(r.url) if "/ui/panels" in r.url else None)
    page.goto(proc.url + "/ui")
    prompt = page.locator("form#auth")
    expect(prompt).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("main#board")).to_be_hidden()
    assert panel_requests == []  # nothing is asked of the API before there is a key

    page.fill("#auth-credential", "not-a-key")
    page.click("form#auth button[type=submit]")
    expect(page.locator("#auth-error")).to_contain_text("refused", timeout=WAIT_MS)
    expect(prompt).to_be_visible()

    # A read-only key: the town, no way to change it.
    page.fill("#auth-credential", reader.key)
    page.click("form#auth button[type=submit]")
    backlog = page.locator(".panel-body[data-panel='backlog']")
    expect(backlog).to_contain_text("queued", timeout=WAIT_MS)
    expect(page.locator("#viewer")).to_contain_text("viewer")
    expect(page.locator("form#backlog-add")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('townhall.credential')") == reader.key
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    page.reload()  # the same tab keeps the key for its session: no second prompt
    expect(backlog).to_contain_text("queued", timeout=WAIT_MS)
    expect(prompt).to_be_hidden()

    # Forget it, sign in with town.write: the add form appears and works.
    page.click("#sign-out")
    expect(prompt).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('townhall.credential')") is None
    page.fill("#auth-credential", writer.key)
    page.click("form#auth button[type=submit]")
    form = page.locator("form#backlog-add")
    expect(form).to_be_visible(timeout=WAIT_MS)
    page.fill("#backlog-description", f"from the page {XSS}")
    page.fill("#backlog-tags", "ui, docs")
    page.click("form#backlog-add button[type=submit]")
    expect(backlog.get_by_text(f"from the page {XSS}")).to_have_count(1, timeout=WAIT_MS)
    expect(backlog.locator(".tag", has_text="ui")).to_have_count(1)
    assert offline_page.external == [] and offline_page.page_errors == []
    with httpx.Client(base_url=proc.url, timeout=10, headers=reader.bearer()) as client:
        entries = client.get("/v1/backlog").json()["backlog"]
    assert [e["description"] for e in entries] == ["queued", f"from the page {XSS}"]
    assert entries[1]["tags"] == ["ui", "docs"]
