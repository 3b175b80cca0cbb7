"""Hash records read leniently, as upstream reads them (townhall/store/codec.py): the compiled
decoders' shortcuts for what townhall writes must read everything else as the rules say."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec

from townhall.domain import Agent, AgentState, Task, TaskState
from townhall.domain.agents import AgentType, SpawnMode
from townhall.store.codec import RememberingDecoder, agent_from_hash, agent_to_hash, task_from_hash, task_to_hash

AGENT_ID = "0b0c6f7e-1111-4222-8333-444455556666"
UTC = timezone.utc


def test_what_townhall_writes_reads_back_as_it_was() -> None:
    agent = Agent.new("worker-1", "claude")
    agent.state, agent.tasks_completed, agent.current_task = AgentState.WORKING, 7, "t-1"
    assert agent_from_hash(agent_to_hash(agent).set) == agent
    task = Task.new("do it", tags=["a", "b"], timeout_secs=30)
    task.state, task.result = TaskState.COMPLETED, ""
    assert task_from_hash(task_to_hash(task).set) == task


def test_odd_spellings_read_by_the_lenient_rules() -> None:
    agent = agent_from_hash({
        "id": AGENT_ID, "name": "odd", "created_at": "2026-01-02T03:04:05.123456789Z",
        "state": " IDLE ", "agent_type": "robot", "spawn_mode": "ForkedContext",
        "last_heartbeat": "2026-01-02T05:04:05+02:00", "last_active_at": "2026-01-02T03:04:05",
        "tasks_completed": "-2", "rounds_completed": "١٢", "nickname": "", "current_task": "",
    })
    assert agent is not None
    assert (agent.state, agent.agent_type, agent.spawn_mode) == (AgentState.IDLE, AgentType.WORKER,
                                                                  SpawnMode.FORKED_CONTEXT)
    created = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)  # digits past the sixth dropped
    assert agent.created_at == created and agent.created_at.tzinfo is UTC
    assert agent.last_heartbeat == created - timedelta(microseconds=123456)  # +02:00 read as UTC
    assert agent.last_heartbeat.tzinfo is UTC
    assert agent.last_active_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # naive means UTC
    assert (agent.tasks_completed, agent.rounds_completed) == (0, 12)  # a negative count reads as 0
    assert (agent.nickname, agent.current_task) == (None, None)  # empty optionals read as absent


def test_missing_and_unreadable_fields() -> None:
    before = datetime.now(UTC)
    agent = agent_from_hash({"id": AGENT_ID, "name": "bare", "created_at": "2026-01-02T03:04:05+00:00",
                             "last_active_at": "yesterday", "tasks_completed": "many"})
    assert agent is not None and agent.state is AgentState.STARTING  # a missing state is starting
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert agent.last_active_at == created  # unreadable: the record's creation
    assert agent.last_heartbeat >= before  # missing heartbeat: now
    assert agent.tasks_completed == 0
    task = task_from_hash({"id": "t", "state": "in_flight", "tags": "not json", "timeout_secs": "0",
                           "result": ""})
    assert task is not None
    assert (task.state, task.tags, task.timeout_secs, task.result) == (TaskState.RUNNING, [], None, "")
    assert task.created_at >= before  # a missing created_at reads as now
    assert agent_from_hash({"name": "no id"}) is None and agent_from_hash({}) is None


def test_a_remembering_decoder_reads_as_the_plain_one_and_never_stale() -> None:
    class Listed(msgspec.Struct, frozen=True):
        id: str
        created_at: datetime
        state: AgentState
        rounds_completed: int

    fields = ("id", "created_at", "state", "rounds_completed")
    decode = RememberingDecoder(Listed, fields, cap=2)
    values = ["a1", "2026-12-02T10:00:00.123456+00:00", "Idle", "-4"]
    first = decode(values)
    assert first == Listed(id="a1", created_at=datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=timezone.utc),
                           state=AgentState.IDLE, rounds_completed=0)  # the lenient rules
    assert decode(list(values)) is first  # the same values: what they read as before
    changed = decode(["a1", values[1], "working", "3"])
    assert (changed.state, changed.rounds_completed) == (AgentState.WORKING, 3)
    assert decode(["", values[1], "idle", "1"]) is None  # no id: no record, as hash_decoder reads it
    # A creation time that does not parse reads as now, each time: never remembered.
    undated = ["a2", "garbage", "idle", "1"]
    assert decode(undated) is not decode(undated)
    # Past the cap everything is forgotten, and reads again the same.
    decode(["a3", values[1], "idle", "1"])
    decode(["a4", values[1], "idle", "1"])
    again = decode(values)
    assert again == first and again is not first
