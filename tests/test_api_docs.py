"""API docs offline (issue 13, item 6): Swagger UI comes from the installed package, served by townhall;
an unknown ``/schema`` page is a problem like any unknown path."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from townhall.http.api_docs import DOCS_CSP
from townhall.testing.browser import OfflinePage
from townhall.testing.inprocess import app_client
from townhall.testing.process import TownhallProcess


async def test_the_swagger_page_loads_nothing_from_another_host(town_dir: Path) -> None:
    async with app_client(town_dir) as client:
        page = await client.get("/schema/swagger")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == DOCS_CSP
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert urls and all(url.startswith("/schema/") for url in urls), urls
        assert "<script>" not in page.text  # every script is a file, so the CSP needs no 'unsafe-inline'
        for url in urls:
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert asset.content


@pytest.mark.parametrize("path", ["/schema/redoc", "/schema/nope", "/schema/nope/deeper", "/schema/nope.json",
                                  "/schema/static/swagger-ui/missing.js"])
async def test_unknown_schema_paths_are_problems(town_dir: Path, path: str) -> None:
    async with app_client(town_dir) as client:
        answer = await client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["status"] == 404 and body["instance"] == path and body["request_id"]


def test_swagger_renders_the_operations_offline(townhall: TownhallProcess, offline_page: OfflinePage) -> None:
    page = offline_page.page
    page.goto(f"{townhall.url}/schema/swagger")
    page.locator(".opblock").first.wait_for(timeout=15_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    document = httpx.get(f"{townhall.url}/schema/openapi.json").json()
    operations = sum(len([m for m in item if m in {"get", "post", "put", "patch", "delete"}])
                     for item in document["paths"].values())
    assert len(paths) == operations
    assert any("/v1/status" in path for path in paths)
    offline_page.assert_clean()
