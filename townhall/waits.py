"""Bounded waits on asyncio events, shared by the worker's loops and the services that poll."""

from __future__ import annotations

import asyncio


async def event_within(event: asyncio.Event, seconds: float) -> bool:
    """Whether ``event`` is set within ``seconds`` (``False`` when the time ran out first)."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True
