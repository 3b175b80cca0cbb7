"""Issue 14 item 10: what is not declared is not granted — unscoped ``/v1`` routes and key entries
without scopes stop startup; the original's single-key form still means every scope, said out loud."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from litestar import get
from litestar.config.app import AppConfig

from townhall import hookimpl
from townhall.app import create_app
from townhall.auth import Scope
from townhall.config import ConfigError, load_town
from townhall.plugins import load_plugins
from townhall.runtime import build_runtime
from townhall.testing.process import TownhallProcess, free_port, run_cli
from townhall.testing.towns import write_town
from townhall_auth_apikey.testing import make_key


def test_a_key_entry_without_scopes_stops_startup(tmp_path: Path, town_name: str, redis_url: str) -> None:
    key = make_key("ci", Scope.TOWN_READ)
    for listing in ("", "scopes = []\n"):
        write_town(tmp_path, town_name, redis_url=redis_url, extra=(
            f'[townhall.auth]\nmode = "api_key"\n[[townhall.auth.api_keys]]\nid = "ci"\nhash = "{key.hash}"\n{listing}'))
        result = run_cli("--town", str(tmp_path), "rest", "--port", str(free_port()), timeout=30)
        assert result.returncode != 0
        assert "API key 'ci' lists no scopes" in result.stderr, result.stderr


def test_the_single_key_form_grants_every_scope_with_a_warning(tmp_path: Path, town_name: str,
                                                               redis_url: str) -> None:
    key = make_key("default", Scope.ADMIN)
    write_town(tmp_path, town_name, redis_url=redis_url,
               extra=f'[townhall.auth]\nmode = "api_key"\napi_key_hash = "{key.hash}"\napi_key_scopes = []\n')
    proc = TownhallProcess(tmp_path).start()
    try:
        response = httpx.post(f"{proc.url}/v1/backlog", json={"description": "x"}, headers=key.bearer(), timeout=10)
        assert response.status_code == 201
    finally:
        proc.stop()
    assert "API key 'default' (api_key_hash) has every scope because api_key_scopes is empty" in proc.output()


class RoutePlugin:
    """A plugin adding the given routes through the app-setup hook."""

    def __init__(self, *handlers: object) -> None:
        self.handlers = handlers

    @hookimpl
    def townhall_setup_app(self, app_config: AppConfig, context: object) -> None:
        app_config.route_handlers.extend(self.handlers)


def refused_startup(tmp_path: Path, town_name: str, redis_url: str, *handlers: object) -> str:
    """What startup says when a plugin adds ``handlers`` (it must refuse them)."""
    write_town(tmp_path, town_name, redis_url=redis_url)
    runtime = build_runtime(load_town(tmp_path), load_plugins(extra=[("routes", RoutePlugin(*handlers))]))
    with pytest.raises(ConfigError) as info:
        create_app(runtime)
    return str(info.value)


@get("/v1/plugin/secrets", sync_to_thread=False)
def secrets() -> dict[str, str]:
    return {"secret": "served to anyone"}


def test_a_plugin_route_without_a_scope_stops_startup(tmp_path: Path, town_name: str, redis_url: str) -> None:
    assert "GET /v1/plugin/secrets" in refused_startup(tmp_path, town_name, redis_url, secrets)


async def own_hook(request: object) -> None:
    return None


@get("/v1/plugin/hooked", opt={"scope": Scope.ADMIN}, before_request=own_hook, sync_to_thread=False)
def hooked() -> dict[str, str]:
    return {"secret": "served past the guard"}


def test_a_route_with_its_own_before_request_stops_startup(tmp_path: Path, town_name: str, redis_url: str) -> None:
    # Litestar calls only the nearest layer's before_request: this one would replace townhall's guard.
    refusal = refused_startup(tmp_path, town_name, redis_url, hooked)
    assert "GET /v1/plugin/hooked" in refusal and "before_request" in refusal
    assert "/health" not in refusal
