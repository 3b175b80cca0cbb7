"""Issue 14 item 12 against a real townhall process: the audit log records limited reads and the
server's own request id, escapes line breakers, and rotates."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import httpx

from townhall.auth import Scope
from townhall.testing.process import TownhallProcess
from townhall_auth_apikey.testing import api_keys_toml, make_key

Serve = Callable[..., TownhallProcess]

AUDIT = '[townhall.audit]\nfile = "audit.jsonl"\nmax_bytes = {max_bytes}\nbackup_count = 2\n'
TIGHT = "[townhall.rate_limit]\nburst_size = 2\nrequests_per_minute = 6\nmutating_requests_per_minute = 6\n"


def audit_lines(town: Path) -> list[dict[str, object]]:
    text = (town / "audit.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_limited_reads_and_both_request_ids_are_audited(serve: Serve) -> None:
    key = make_key("ci", Scope.TOWN_READ)
    proc = serve(api_keys_toml([key]) + TIGHT + AUDIT.format(max_bytes=0))
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        answers = [client.get("/v1/status", headers={**key.bearer(), "X-Request-ID": f"client-{n}"})
                   for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = [r for r in audit_lines(proc.town_dir) if r["status"] == 429]
    assert len(limited) == 1
    line = limited[0]
    assert (line["method"], line["principal"], line["outcome"], line["request_id"]) == ("GET", "ci", "limited", "client-2")
    assert re.fullmatch(r"[0-9a-f]{32}", str(line["server_request_id"]))


def test_line_breakers_in_the_path_are_escaped(serve: Serve) -> None:
    proc = serve(api_keys_toml([make_key("ci", Scope.TOWN_READ)]) + AUDIT.format(max_bytes=0))
    injected = "%E2%80%A8%C2%85%7F%E2%80%A9x%0d"  # U+2028, NEL, DEL, U+2029, "x", CR
    response = httpx.post(f"{proc.url}/v1/missions/{injected}/stop", timeout=10)
    assert response.status_code == 401
    raw = (proc.town_dir / "audit.jsonl").read_text(encoding="utf-8")
    assert not re.search("[\u007f-\u009f\u2028\u2029\r]", raw)
    lines = audit_lines(proc.town_dir)  # str.splitlines() splits at every one of those characters
    assert len(lines) == 1 and lines[0]["path"] == "/v1/missions/\u2028\u0085\u007f\u2029x\r/stop"


def test_the_audit_file_rotates_by_size(serve: Serve) -> None:
    proc = serve(api_keys_toml([make_key("ci", Scope.TOWN_READ)]) + AUDIT.format(max_bytes=2000))
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        for _ in range(60):
            client.get("/v1/status")  # 401, then 429: each one an audit line
    files = sorted(p.name for p in proc.town_dir.glob("audit.jsonl*"))
    assert files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all((proc.town_dir / name).stat().st_size <= 2000 for name in files)
