"""Mailboxes: upstream placement rules, peek, lengths, drain, re-routing and requeue."""

from __future__ import annotations

import msgspec
import pytest

from townhall.domain import SUPERVISOR_ID, Message, Priority, QueryBody, TaskBody
from townhall.store import Placement, TownStore
from townhall.store.json_codec import decode_message, encode_message

A = "aaaa0000-0000-4000-8000-00000000000a"
B = "bbbb0000-0000-4000-8000-00000000000b"


@pytest.fixture
def store(aredis, town_name) -> TownStore:
    return TownStore(aredis, town_name)


def msg(text: str, priority: Priority = Priority.NORMAL, to: str = A) -> Message:
    return Message.new(SUPERVISOR_ID, to, TaskBody(description=text), priority=priority)


async def inbox_texts(aredis, key: str) -> list[str]:
    return [decode_message(raw).summary() for raw in await aredis.lrange(key, 0, -1)]


async def test_placement_rules(store, aredis):
    assert await store.messages.send(msg("n1")) is Placement.BACK
    assert await store.messages.send(msg("low", Priority.LOW)) is Placement.BACK
    assert await store.messages.send(msg("high", Priority.HIGH)) is Placement.FRONT
    assert await store.messages.send(msg("urg", Priority.URGENT)) is Placement.FRONT
    assert await store.messages.send(msg("flagged"), urgent=True) is Placement.URGENT
    assert await inbox_texts(aredis, store.keys.inbox(A)) == ["urg", "high", "n1", "low"]
    urgent = await aredis.lrange(store.keys.urgent(A), 0, -1)
    assert [decode_message(u).priority for u in urgent] == [Priority.NORMAL]


async def test_peek_keeps_unparseable_entries_as_raw(store, aredis):
    await store.messages.send(msg("one"))
    await aredis.rpush(store.keys.inbox(A), '{"type":"teleport"}')
    entries = await store.messages.peek(A)
    assert entries[0].message.summary() == "one"
    assert entries[1].message is None and entries[1].raw == '{"type":"teleport"}'
    for i in range(120):
        await store.messages.send(msg(f"m{i}"))
    assert len(await store.messages.peek(A)) == 100


async def test_lengths_and_peek_many_in_one_go(store, aredis):
    await store.messages.send(msg("a1"))
    await store.messages.send(msg("a2"), urgent=True)
    await store.messages.send(msg("b1", to=B))
    await aredis.set(store.keys.inbox("broken"), "legacy string")
    lengths = await store.messages.lengths([A, B, "broken"])
    assert (lengths[A].inbox, lengths[A].urgent, lengths[B].inbox, lengths["broken"].inbox) == (1, 1, 1, 0)
    assert (await store.messages.inbox_len(A), await store.messages.urgent_len(A)) == (1, 1)
    peeked = await store.messages.peek_many([A, B, "broken"])
    assert [e.message.summary() for e in peeked[B]] == ["b1"] and peeked["broken"] == []


async def test_drain_takes_both_lists_urgent_first(store, aredis):
    await store.messages.send(msg("r1"))
    await store.messages.send(msg("r2"))
    await store.messages.send(msg("u1"), urgent=True)
    entries = await store.messages.drain(A)
    assert [(e.message.summary(), e.urgent) for e in entries] == [("u1", True), ("r1", False), ("r2", False)]
    assert not await aredis.exists(store.keys.inbox(A), store.keys.urgent(A))
    await store.messages.requeue(A, entries)
    assert await inbox_texts(aredis, store.keys.inbox(A)) == ["r1", "r2"]
    assert await inbox_texts(aredis, store.keys.urgent(A)) == ["u1"]


async def test_requeue_goes_ahead_of_newer_mail(store, aredis):
    await store.messages.send(msg("old1"))
    await store.messages.send(msg("old2"))
    taken = await store.messages.drain(A)
    await store.messages.send(msg("new"))
    await store.messages.requeue(A, taken)
    assert await inbox_texts(aredis, store.keys.inbox(A)) == ["old1", "old2", "new"]


async def test_reroute_rewrites_recipient_and_keeps_unknown_fields(store, aredis):
    doc = msgspec.json.decode(encode_message(msg("move me", Priority.HIGH)))
    doc["upstream_extra"] = True
    await aredis.rpush(store.keys.inbox(A), msgspec.json.encode(doc).decode())
    await store.messages.send(msg("already there", to=B), urgent=False)
    (entry,) = await store.messages.drain(A)
    assert await store.messages.reroute(entry, B) is Placement.FRONT
    moved = msgspec.json.decode((await aredis.lrange(store.keys.inbox(B), 0, 0))[0])
    assert moved["to"] == B and moved["upstream_extra"] is True and moved["description"] == "move me"


async def test_remove_specific_entries(store, aredis):
    help_q = Message.new(SUPERVISOR_ID, SUPERVISOR_ID, QueryBody(question="[Mission Help Needed] Mission x"))
    await store.messages.send(help_q)
    await store.messages.send(msg("keep", to=SUPERVISOR_ID))
    entries = await store.messages.peek(SUPERVISOR_ID)
    stale = [e.raw for e in entries if e.message and e.message.summary().startswith("[Mission Help Needed]")]
    assert await store.messages.remove(SUPERVISOR_ID, stale) == 1
    assert await inbox_texts(aredis, store.keys.inbox(SUPERVISOR_ID)) == ["keep"]


async def test_restore_processing_puts_taken_work_back_in_front(store, aredis):
    await aredis.rpush(store.keys.processing(A), encode_message(msg("p1")), encode_message(msg("p2")))
    await store.messages.send(msg("queued"))
    assert await store.processing.restore(A) == 2
    assert await inbox_texts(aredis, store.keys.inbox(A)) == ["p1", "p2", "queued"]
    assert not await aredis.exists(store.keys.processing(A))
