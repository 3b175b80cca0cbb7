"""Domain records: state rules, display names, message JSON as upstream writes it, missions, time."""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec
import pytest

from townhall.domain import (
    NICKNAMES,
    SUPERVISOR_ID,
    AckAcknowledged,
    AckApproved,
    AckReceived,
    AckRejected,
    AckThanks,
    Agent,
    AgentState,
    ConfirmationBody,
    CustomBody,
    InformationalBody,
    Message,
    MissionState,
    PingBody,
    Priority,
    StatusResponseBody,
    TaskAssignBody,
    TaskBody,
    TaskDoneBody,
    TaskFailedBody,
    TaskState,
    ack_from_text,
    format_hash_time,
    format_json_time,
    nickname_for,
    parse_time,
)
from townhall.store.json_codec import (
    decode_message,
    decode_mission,
    encode_message,
    encode_mission,
    readdress_message,
    try_decode_message,
)


def test_agent_state_rules():
    assert AgentState.parse("IDLE") is AgentState.IDLE
    assert AgentState.parse("sleeping") is AgentState.STARTING
    assert AgentState.parse(None) is AgentState.STARTING
    assert AgentState.IDLE.rest_name == "Idle"
    assert {s for s in AgentState if s.is_active} == {
        AgentState.STARTING, AgentState.IDLE, AgentState.WORKING, AgentState.PAUSED, AgentState.DRAINING
    }
    assert {s for s in AgentState if s.is_terminal} == {AgentState.COLD, AgentState.STOPPED, AgentState.ERROR}
    assert [s for s in AgentState if s.can_accept_work] == [AgentState.IDLE]


def test_task_state_rules():
    assert TaskState.parse("in_flight") is TaskState.RUNNING
    assert TaskState.parse("weird") is TaskState.PENDING
    assert {s for s in TaskState if s.is_terminal} == {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}


def test_priority_order():
    assert Priority.LOW < Priority.NORMAL < Priority.HIGH < Priority.URGENT
    assert max([Priority.HIGH, Priority.URGENT, Priority.LOW]) is Priority.URGENT
    assert [p.goes_to_front for p in Priority] == [False, False, True, True]


def test_display_names_and_nickname():
    agent = Agent(id="3b2a0000-1111-4222-8333-444455556666", name="backend-1", nickname=None)
    assert agent.display_name == "backend-1"
    assert agent.display_label == "backend-1 [backend-1]"
    assert agent.short_id == "3b2a"
    agent.nickname, agent.role_id = "Ruth", "reviewer"
    assert agent.display_label == "Ruth [reviewer]"
    agent.role_id = "default"
    assert agent.display_label == "Ruth [backend-1]"
    assert len(NICKNAMES) == 400 and len(set(NICKNAMES[:200])) == 200
    # 0x3b2a = 15146; 15146 % 400 = 346 → a girls' name (index ≥ 200)
    assert nickname_for(agent.id) == NICKNAMES[346]
    assert nickname_for("0000" + agent.id[4:]) == NICKNAMES[0]


def test_time_formats_and_tolerant_parsing():
    t = datetime(2026, 4, 4, 18, 0, 0, 123456, tzinfo=timezone.utc)
    assert format_hash_time(t) == "2026-04-04T18:00:00.123456+00:00"
    assert format_json_time(t) == "2026-04-04T18:00:00.123456Z"
    assert parse_time("2026-04-04T18:00:00.123456789+00:00") == t
    assert parse_time("2026-04-04T18:00:00.123456789Z") == t
    assert parse_time("2026-04-04T20:00:00+02:00") == datetime(2026, 4, 4, 18, tzinfo=timezone.utc)
    assert parse_time("2026-04-04T18:00:00.1Z").microsecond == 100000
    assert parse_time("garbage") is None and parse_time("") is None


UPSTREAM_ASSIGN = (
    '{"id":"6f1c0000-0000-4000-8000-000000000001","from":"00000000-0000-0000-0000-000000000001",'
    '"to":"3b2a0000-0000-4000-8000-000000000002","type":"task_assign",'
    '"task_id":"9d4e0000-0000-4000-8000-000000000003","priority":"normal",'
    '"created_at":"2026-04-04T18:00:00.123456789Z","correlation_id":null}'
)


def test_decode_upstream_task_assign():
    msg = decode_message(UPSTREAM_ASSIGN)
    assert msg.from_ == SUPERVISOR_ID
    assert msg.body == TaskAssignBody(task_id="9d4e0000-0000-4000-8000-000000000003")
    assert msg.type == "task_assign" and msg.type_label() == "task_assign"
    assert msg.summary() == "task assignment 9d4e0000-0000-4000-8000-000000000003"
    assert abs(msg.created_at.microsecond - 123456) <= 1  # 9 digits, rounded to what Python holds


def test_encode_matches_upstream_shape():
    msg = decode_message(UPSTREAM_ASSIGN)
    out = msgspec.json.decode(encode_message(msg))
    assert list(out) == ["id", "from", "to", "type", "task_id", "priority", "created_at", "correlation_id"]
    assert out["correlation_id"] is None
    assert out["created_at"].endswith("Z")


def test_unknown_fields_ignored_and_unknown_types_rejected():
    doc = msgspec.json.decode(UPSTREAM_ASSIGN)
    doc["future_field"] = {"x": 1}
    assert decode_message(msgspec.json.encode(doc)).type == "task_assign"
    doc["type"] = "teleport"
    assert try_decode_message(msgspec.json.encode(doc)) is None
    assert try_decode_message("not json") is None


@pytest.mark.parametrize(
    "body,label,summary",
    [
        (TaskBody(description="fix it"), "task", "fix it"),
        (InformationalBody(summary_text="fyi"), "info", "fyi"),
        (ConfirmationBody(ack_type=AckRejected(reason='no "tests"')), "confirmation", 'Rejected { reason: "no \\"tests\\"" }'),
        (ConfirmationBody(ack_type=AckThanks()), "confirmation", "Thanks"),
        (TaskDoneBody(task_id="t1", result="ok"), "task_done", "done t1: ok"),
        (TaskFailedBody(task_id="t1", error="boom"), "task_failed", "failed t1: boom"),
        (StatusResponseBody(state="Idle", current_task=None), "status_response", "status: Idle"),
        (PingBody(), "ping", "ping"),
        (CustomBody(kind="deploy", payload="prod"), "custom:deploy", "[deploy] prod"),
    ],
)
def test_round_trip_labels_and_summaries(body, label, summary):
    msg = Message.new(SUPERVISOR_ID, "a", body, priority=Priority.HIGH)
    back = decode_message(encode_message(msg))
    assert (back.id, back.from_, back.to, back.body, back.priority) == (msg.id, msg.from_, msg.to, body, Priority.HIGH)
    assert back.type_label() == label
    assert back.summary() == summary


def test_wire_shapes_of_nested_and_renamed_fields():
    ack = msgspec.json.decode(encode_message(Message.new("a", "b", ConfirmationBody(ack_type=AckRejected(reason="r")))))
    assert ack["ack_type"] == {"type": "rejected", "reason": "r"}
    info = msgspec.json.decode(encode_message(Message.new("a", "b", InformationalBody(summary_text="s"))))
    assert info["type"] == "informational" and info["summary"] == "s"
    status = msgspec.json.decode(encode_message(Message.new("a", "b", StatusResponseBody(state="Idle"))))
    assert "current_task" in status and status["current_task"] is None


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Rejected: missing tests", AckRejected(reason="missing tests")),
        ("rejected:", AckRejected(reason="No reason provided")),
        ("received, on it", AckReceived()),
        ("Approved!", AckApproved()),
        ("many thanks", AckThanks()),
        ("thank you", AckThanks()),
        ("ok", AckAcknowledged()),
    ],
)
def test_ack_from_text(text, expected):
    assert ack_from_text(text) == expected


def test_readdress_keeps_unknown_fields():
    doc = msgspec.json.decode(UPSTREAM_ASSIGN)
    doc["extra"] = 7
    out = msgspec.json.decode(readdress_message(msgspec.json.encode(doc).decode(), "new-agent"))
    assert out["to"] == "new-agent" and out["extra"] == 7


UPSTREAM_MISSION = (
    '{"id":"5b0e0000-0000-4000-8000-000000000009","objective_refs":[{"type":"issue","owner":"o",'
    '"repo":"r","number":3},{"type":"doc","path":"docs/plan.md"}],"state":"running","policy":'
    '{"max_parallel_items":2,"reviewer_required":true,"auto_merge":false,"watch_interval_secs":180,'
    '"future_knob":1},"created_at":"2026-04-04T18:00:00.123456789Z","updated_at":'
    '"2026-04-04T18:00:00.123456789Z","next_wake_at":null,"blocked_reason":null,'
    '"dispatcher_last_tick_at":"2026-04-04T18:00:30Z","work_graph":{"nodes":[1,2]}}'
)


def test_mission_round_trip_keeps_dispatcher_fields():
    mission = decode_mission(UPSTREAM_MISSION)
    assert mission.state is MissionState.RUNNING and not mission.state.is_terminal
    assert mission.dispatcher_help_request_attempts == 0
    mission.state = MissionState.BLOCKED
    mission.blocked_reason = "Stopped by user"
    out = msgspec.json.decode(encode_mission(mission))
    original = msgspec.json.decode(UPSTREAM_MISSION)
    assert out["state"] == "blocked" and out["blocked_reason"] == "Stopped by user"
    for untouched in ("work_graph", "policy", "created_at", "updated_at", "objective_refs", "dispatcher_last_tick_at"):
        assert out[untouched] == original[untouched]
    assert "dispatcher_help_request_attempts" not in out  # never written unless it changed
