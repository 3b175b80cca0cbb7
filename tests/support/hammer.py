"""Load for the reliability tests: clients that alternate creating a backlog task and reading the status
until told to stop, recording every answer."""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

import httpx


class Sample(NamedTuple):
    """One answer under load."""

    status: int
    #: Seconds the request took.
    elapsed: float
    content_type: str
    #: When it was sent (``time.monotonic()``), to tell the answers given during an incident.
    started: float


async def hammer(base: str, stop: asyncio.Event, seen: list[Sample], created: list[str], label: str) -> None:
    """Until ``stop``: every other request creates a backlog task (``"<label> <i>"``; the ids of the ones
    acknowledged with 201 go to ``created``), the others read ``/v1/status``."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        i = 0
        while not stop.is_set():
            i += 1
            started = time.monotonic()
            if i % 2:
                r = await http.post("/v1/backlog", json={"description": f"{label} {i}"})
            else:
                r = await http.get("/v1/status")
            seen.append(Sample(r.status_code, time.monotonic() - started, r.headers.get("content-type", ""), started))
            if r.status_code == 201:
                created.append(r.json()["task_id"])
            await asyncio.sleep(0.01)
