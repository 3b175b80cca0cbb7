"""The dashboard's live parts in a real headless Chromium against a real townhall: the tasks panel
follows the event stream (no reload, no polling), and the cancel/retry buttons act on the task."""

from __future__ import annotations

import os
from typing import Callable

import httpx
from playwright.sync_api import expect

from townhall.testing.browser import OfflinePage
from townhall.testing.process import TownhallProcess

from test_dashboard_browser import WAIT_MS, assign, spawn

Serve = Callable[..., TownhallProcess]


def test_a_task_completion_shows_within_two_seconds_without_a_reload(serve: Serve,
                                                                     offline_page: OfflinePage) -> None:
    proc = serve()
    page = offline_page.page
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        spawn(client, "alice")
        task_id = assign(client, "alice", "write the <b>release</b> notes")
        documents: list[str] = []
        panel_requests: list[str] = []
        page.on("request", lambda r: (documents if r.resource_type == "document" else
                                      panel_requests if "/ui/panels" in r.url else []).append(r.url))
        page.clock.install()  # the page's timers run on a clock the test moves
        page.goto(proc.url + "/ui")
        row = page.locator(f".panel-body[data-panel='tasks'] tr[data-task='{task_id}']")
        expect(row.locator(".state")).to_have_text("assigned", timeout=WAIT_MS)
        expect(page.locator("#live")).to_have_text("live", timeout=WAIT_MS)
        # No polling: ten minutes of the page's timers fetch nothing but what events asked for (the
        # upkeep's scaling watch may announce a recommendation meanwhile; each event fetches at most
        # once, and one fetch may already be waiting for its 1 s coalescing timer when we start).
        feed = page.locator("#feed li")
        settled, heard = len(panel_requests), feed.count()
        page.clock.fast_forward("10:00")
        assert len(panel_requests) - settled <= feed.count() - heard + 1, panel_requests

        done = client.post(f"/v1/tasks/{task_id}/complete", json={"result": "notes <i>written</i>"})
        assert done.status_code == 200, done.text
        # The event arrives on the open stream; the page fetches the tasks panel once and shows it.
        expect(row.locator(".state")).to_have_text("completed", timeout=2_000)
        expect(row.locator(".outcome")).to_have_text("notes <i>written</i>")
        expect(page.locator("#feed li", has_text="completed").first).to_be_visible()
    assert documents == [proc.url + "/ui"]  # never reloaded
    offline_page.assert_clean()


def test_cancel_and_retry_buttons(serve: Serve, offline_page: OfflinePage) -> None:
    proc = serve()
    page = offline_page.page
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        spawn(client, "alice")
        task_id = assign(client, "alice", "a task to change our minds about")
        page.goto(proc.url + "/ui")
        row = page.locator(f".panel-body[data-panel='tasks'] tr[data-task='{task_id}']")
        expect(row.locator(".state")).to_have_text("assigned", timeout=WAIT_MS)
        expect(row.locator("button[data-action='retry']")).to_have_count(0)

        row.locator("button[data-action='cancel']").click()
        expect(row.locator(".state")).to_have_text("cancelled", timeout=WAIT_MS)
        assert client.get(f"/v1/tasks/{task_id}").json()["state"] == "cancelled"
        expect(row.locator("button[data-action='cancel']")).to_have_count(0)

        row.locator("button[data-action='retry']").click()
        expect(row.locator(".state")).to_have_text("pending", timeout=WAIT_MS)
        assert client.get(f"/v1/tasks/{task_id}").json()["state"] == "pending"
        backlog = page.locator(".panel-body[data-panel='backlog']")
        expect(backlog.locator(f"li[data-task='{task_id}']")).to_have_count(1)

        # The state filter narrows the list; the task's old state no longer lists it.
        page.select_option("#task-state", "cancelled")
        expect(page.locator(".panel-body[data-panel='tasks']")).to_contain_text("No tasks in state cancelled")
        page.select_option("#task-state", "pending")
        expect(row).to_have_count(1)
    offline_page.assert_clean()


def test_screenshot_of_a_working_town(serve: Serve, offline_page: OfflinePage) -> None:
    """The picture in docs/dashboard.md: written where ``TOWNHALL_SCREENSHOT`` says, when it is set."""
    proc = serve()
    page = offline_page.page
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        for name, nickname in (("alice", "Ada"), ("bob", "Bo"), ("carol", None)):
            spawn(client, name, nickname)
        page.goto(proc.url + "/ui")
        expect(page.locator("#live")).to_have_text("live", timeout=WAIT_MS)
        done = assign(client, "alice", "Write the release notes for 0.2")
        client.post(f"/v1/tasks/{done}/complete", json={"result": "docs/release-0.2.md written (412 lines)"})
        dropped = assign(client, "bob", "Try the old migration script once more")
        client.post(f"/v1/tasks/{dropped}/cancel")
        assign(client, "carol", "Fix the flaky login test in tests/test_auth.py")
        for text, tags in (("Bump the Redis client to 8.1", ["deps"]), ("Translate the README to French", ["docs"])):
            client.post("/v1/backlog", json={"description": text, "tags": tags})
        feed = page.locator("#feed li")
        feed.first.wait_for(timeout=WAIT_MS)
        tasks = page.locator(".panel-body[data-panel='tasks']")
        expect(tasks.locator("tr[data-task]")).to_have_count(5, timeout=WAIT_MS)
        expect(tasks.locator(f"tr[data-task='{dropped}'] .state")).to_have_text("cancelled", timeout=WAIT_MS)
    target = os.environ.get("TOWNHALL_SCREENSHOT")
    if target:
        page.screenshot(path=target, full_page=True)
    offline_page.assert_clean()
