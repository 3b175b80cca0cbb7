"""Missions: dispatcher records survive our saves; active set; delete; event log and stream."""

from __future__ import annotations

import msgspec
import pytest

from townhall.domain import MissionState, TownEvent
from townhall.store import TownStore

M1 = "5b0e0000-0000-4000-8000-000000000009"
M2 = "5b0e0000-0000-4000-8000-00000000000a"


@pytest.fixture
def store(aredis, town_name) -> TownStore:
    return TownStore(aredis, town_name)


def dispatcher_record(mission_id: str, state: str = "running") -> str:
    return msgspec.json.encode(
        {
            "id": mission_id,
            "objective_refs": [{"type": "issue", "owner": "o", "repo": "r", "number": 1}],
            "state": state,
            "policy": {"max_parallel_items": 2, "reviewer_required": True, "auto_merge": False,
                       "watch_interval_secs": 180},
            "created_at": "2026-04-04T18:00:00.123456789Z",
            "updated_at": "2026-04-04T18:00:00.123456789Z",
            "next_wake_at": None,
            "blocked_reason": None,
            "dispatcher_last_tick_at": "2026-04-04T18:00:30.5Z",
            "dispatcher_help_request_attempts": 2,
            "scheduler_cursor": {"opaque": [1, 2, 3]},
        }
    ).decode()


async def test_get_and_save_preserve_unknown_fields(store, aredis):
    await aredis.set(store.keys.mission(M1), dispatcher_record(M1))
    mission = await store.missions.get(M1)
    assert mission.state is MissionState.RUNNING and mission.dispatcher_help_request_attempts == 2
    mission.state = MissionState.BLOCKED
    mission.blocked_reason = "Stopped by user"
    mission.clear_help_requests()
    await store.missions.save(mission)
    doc = msgspec.json.decode(await aredis.get(store.keys.mission(M1)))
    assert doc["scheduler_cursor"] == {"opaque": [1, 2, 3]}
    assert doc["created_at"] == "2026-04-04T18:00:00.123456789Z"
    assert (doc["state"], doc["blocked_reason"], doc["dispatcher_help_request_attempts"]) == ("blocked", "Stopped by user", 0)
    assert await aredis.sismember(store.keys.mission_index, M1)


async def test_missing_and_unparseable(store, aredis):
    assert await store.missions.get(M1) is None
    await aredis.set(store.keys.mission(M1), "{not json")
    assert await store.missions.get(M1) is None


async def test_list_is_index_union_active_set(store, aredis):
    await aredis.set(store.keys.mission(M1), dispatcher_record(M1))
    await aredis.set(store.keys.mission(M2), dispatcher_record(M2, "completed"))
    await store.missions.add_active(M1)  # as the dispatcher does; no index entry
    assert [m.id for m in await store.missions.list()] == [M1]
    await store.missions.save(await store.missions.get(M2))
    assert [m.id for m in await store.missions.list()] == [M1, M2]
    await aredis.sadd(store.keys.missions_active, "not-a-uuid")
    assert await store.missions.active_ids() == [M1]
    await store.missions.remove_active(M1)
    assert await store.missions.active_ids() == []


async def test_delete_removes_all_mission_keys(store, aredis):
    k = store.keys
    await aredis.set(k.mission(M1), dispatcher_record(M1))
    await aredis.hset(k.mission_sub(M1, "work"), "w1", "{}")
    await aredis.hset(k.mission_sub(M1, "watch"), "x", "{}")
    await aredis.hset(k.mission_sub(M1, "control"), "c", "{}")
    await aredis.set(k.mission_sub(M1, "dispatch_lock"), "owner", ex=90)
    await store.missions.add_active(M1)
    await store.missions.log_event(M1, "started")
    assert await store.missions.delete(M1)
    for part in ("work", "watch", "events", "control", "dispatch_lock"):
        assert not await aredis.exists(k.mission_sub(M1, part)), part
    assert not await aredis.exists(k.mission(M1), k.mission_events_stream(M1))
    assert not await aredis.sismember(k.missions_active, M1)
    assert not await store.missions.delete(M1)


async def test_log_event_list_and_streams(store, aredis):
    for i in range(105):
        await store.missions.log_event(M1, f"step {i}")
    events = await store.missions.events(M1)
    assert len(events) == 100 and events[0].endswith("] step 104")
    assert events[0][0] == "[" and events[0][20] == "]"  # "[YYYY-MM-DD HH:MM:SS] "
    entries = await aredis.xrevrange(store.keys.mission_events_stream(M1), count=1)
    fields = entries[0][1]
    assert fields["event_type"] == "mission_event"
    event = msgspec.json.decode(fields["data"], type=TownEvent)
    assert (event.mission_id, event.message) == (M1, "step 104")
    assert msgspec.json.decode(fields["data"])["timestamp"].endswith("Z")
    assert await aredis.xlen(store.keys.events) == 105
