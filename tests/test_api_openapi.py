"""The committed OpenAPI document is the one the code generates (contract §4.9)."""

from __future__ import annotations

from pathlib import Path

import yaml

from townhall.openapi_export import openapi_document
from townhall.testing.process import run_cli

COMMITTED = Path(__file__).resolve().parents[1] / "docs" / "openapi" / "townhall-v1.yaml"


def test_committed_openapi_is_current() -> None:
    committed = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    assert committed == openapi_document(), (
        "docs/openapi/townhall-v1.yaml is stale: run `townhall openapi --output docs/openapi/townhall-v1.yaml`"
    )


def test_every_v1_operation_declares_security_and_problem_errors() -> None:
    doc = openapi_document()
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    for path, item in doc["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in item.items():
            assert op.get("security") == [{"bearer": []}, {"apiKey": []}], (method, path)
            for code in ("400", "401", "403", "429", "503"):
                assert "application/problem+json" in op["responses"][code]["content"], (method, path, code)


def test_openapi_command_needs_no_town(tmp_path: Path) -> None:
    out = tmp_path / "api.yaml"
    result = run_cli("openapi", "--output", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(out.read_text()) == openapi_document()
