"""Issue 17 item 10: error bodies say what was expected and where, with RFC 9110 titles, and every
problem ``type`` is a section of a page townhall serves itself (``GET /errors``, ``docs/errors.md``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from townhall.problem_types import PROBLEM_TYPES, render_markdown
from townhall.testing.inprocess import app_client
from townhall.worker.main import Stop

ROOT = Path(__file__).resolve().parents[1]
TASK = "00000000-0000-4000-8000-000000000009"


def test_errors_page_is_generated_from_the_problem_types() -> None:
    assert (ROOT / "docs" / "errors.md").read_text() == render_markdown(), \
        "run: python -m townhall.problem_types > docs/errors.md"


async def test_every_problem_type_is_a_section_of_the_served_page(town_dir: Path) -> None:
    async with app_client(town_dir) as client:
        page = await client.get("/errors")  # no credentials needed
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        ids = set(re.findall(r'id="([^"]+)"', page.text))
        for problem in PROBLEM_TYPES:
            path, anchor = problem.uri.split("#")
            assert path == "/errors" and anchor in ids, problem
        # GitHub's anchor for the heading of docs/errors.md is the same id.
        assert "## 422 Unprocessable Content" in render_markdown()

        unknown = await client.get("/v1/agents/nobody/inbox")
        problem = unknown.json()
        assert (problem["type"], problem["title"]) == ("/errors#404-not-found", "Not Found")


async def test_a_missing_body_says_which_body_and_optional_ones_may_be_left_out(town_dir: Path) -> None:
    async with app_client(town_dir) as client:
        missing = await client.post("/v1/tasks/assign")
        assert missing.status_code == 422
        problem = missing.json()
        assert problem["title"] == "Unprocessable Content"
        assert problem["type"] == "/errors#422-unprocessable-content"
        assert problem["errors"] == [{"field": "body", "source": "body", "message":
                                      "a JSON object with agent, task, timeout_secs (optional) is required; "
                                      "no body was sent"}]
        assert "'data'" not in problem["detail"]
        # The docs call these bodies optional: leaving them out is the default.
        assert (await client.post("/v1/reclaim")).json() == {"reclaimed": 0, "destination": "listed", "items": []}
        assert (await client.post("/v1/agents/prune")).json() == {"removed": 0, "agents": []}
        assert (await client.post(f"/v1/tasks/{TASK}/complete")).status_code == 404  # the body was fine


@pytest.mark.parametrize(("method", "path", "field", "source"), [
    ("GET", "/v1/status?deep=yes", "deep", "query"),
    ("GET", "/v1/tasks/not-an-id!", "task_id", "path"),
    ("POST", "/v1/backlog/not-an-id!/claim", "task_id", "path"),
])
async def test_the_source_of_a_bad_parameter_is_where_it_was(town_dir: Path, method: str, path: str,
                                                             field: str, source: str) -> None:
    async with app_client(town_dir) as client:
        response = await client.request(method, path, json={"agent": "x"} if method == "POST" else None)
        assert response.status_code == 422, response.text
        assert [(e["field"], e["source"]) for e in response.json()["errors"]] == [(field, source)]


def test_stop_reasons_read_as_words_in_activity_lines() -> None:
    assert f"handed back ({Stop.REQUESTED})" == "handed back (stop requested)"
