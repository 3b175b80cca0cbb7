"""A real headless browser for tests: the system's Chromium (Debian's ``chromium`` package) driven by
Playwright, with every request that leaves the machine refused and recorded.

Playwright's own browser download is never used (``playwright install`` needs internet): the browser is the
one on ``PATH``. Without it the browser tests skip, except under CI (``CI`` set), where ``.ci/run``
installs it and a missing browser is a failure, so a broken install step cannot pass as green.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Response, Route

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_NAMES = ("chromium", "chromium-browser")


def chromium_executable() -> str:
    """The system Chromium's path; skips the test (fails it under CI) when there is none."""
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    reason = "no system Chromium on PATH (Debian: apt-get install -y chromium); browser tests need it"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: .ci/run installs it, so CI must run them")
    pytest.skip(reason)


@dataclass
class OfflinePage:
    """A page in a fresh browser context: requests to any host but loopback are aborted and listed in
    ``external``; answers with an error status (``"404 http://…"``), console errors (a CSP violation is
    one) and uncaught page errors are listed too."""

    page: Page
    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """No request left the machine, every answer was a success, nothing was refused by the page's
        policy, no script failed."""
        assert self.external == [], f"requests to other hosts: {self.external}"
        assert self.failed == [], f"failed requests: {self.failed}"
        assert self.page_errors == [], f"uncaught errors in the page: {self.page_errors}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"


def launch(playwright_chromium: object) -> Browser:
    return playwright_chromium.launch(  # type: ignore[attr-defined, no-any-return]
        executable_path=chromium_executable(), args=["--no-sandbox"], headless=True)


def offline_page(browser: Browser) -> Iterator[OfflinePage]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = context.new_page()
    wrapper = OfflinePage(page)

    def guard(route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOCAL_HOSTS:
            wrapper.external.append(url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    def on_console(message: ConsoleMessage) -> None:
        # A failed load is listed in `failed`, with its URL, which the console line lacks.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            wrapper.console_errors.append(message.text)

    def on_response(response: Response) -> None:
        if response.status >= 400:
            wrapper.failed.append(f"{response.status} {response.url}")

    context.route("**/*", guard)
    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda error: wrapper.page_errors.append(str(error)))
    try:
        yield wrapper
    finally:
        context.close()
