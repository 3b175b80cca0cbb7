"""Test helpers: MCP sessions opened with the SDK's own clients, over HTTP and over ``tt mcp``."""

from __future__ import annotations

import json
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import httpx2
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

TT = str(Path(sys.executable).parent / "tt")


@asynccontextmanager
async def http_session(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    """An initialized session with the streamable-HTTP transport at ``url`` (e.g. ``…/mcp``)."""
    async with httpx2.AsyncClient(headers=headers or {}, timeout=30) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


@asynccontextmanager
async def stdio_session(town_dir: Path, env: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    """An initialized session with a ``tt --town town_dir mcp`` process of its own."""
    params = StdioServerParameters(command=TT, args=["--town", str(town_dir), "mcp"], env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def tool_error(result: CallToolResult) -> str:
    """The text of a tool error (fails when the call succeeded)."""
    assert result.is_error, f"expected a tool error, got {result.structured_content}"
    return _text(result)


def structured(result: CallToolResult) -> Any:
    """A successful call's structured result (fails on a tool error)."""
    assert not result.is_error, _text(result)
    assert result.structured_content is not None
    # The text block carries the same JSON, for clients that read only text.
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
    return result.structured_content


def _text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)
