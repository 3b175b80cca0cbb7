"""The scaling algorithm of reference §9.4 as a pure function: every row of its edge-case table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from townhall.domain import Agent, AgentState
from townhall.services.scaling import ScalingDecision, ScalingRecommendation as R, decide

NOW = datetime(2026, 4, 4, 18, 0, 0, tzinfo=timezone.utc)
TIMEOUT = 300


def agent(state: AgentState, idle_secs: float = 0) -> Agent:
    a = Agent.new(f"w-{state.value}", "test-cli")
    a.state = state
    a.last_active_at = NOW - timedelta(seconds=idle_secs)
    return a


def run(pending: int, in_flight: int, agents: list[Agent], *, max_agents: int = 10,
        idle_timeout_secs: int = TIMEOUT) -> ScalingDecision:
    return decide(pending, in_flight, agents, max_agents=max_agents, idle_timeout_secs=idle_timeout_secs, now=NOW)


def test_no_agents_no_work_scales_to_zero() -> None:
    assert run(0, 0, []) == ScalingDecision(active_agents=0, cold_agents=0, desired_agents=0,
                                            recommendation=R.SCALE_TO_ZERO)


def test_no_work_idle_agents_within_the_timeout_scale_down() -> None:
    d = run(0, 0, [agent(AgentState.IDLE, idle_secs=TIMEOUT - 1), agent(AgentState.IDLE, idle_secs=TIMEOUT + 50)])
    assert (d.desired_agents, d.active_agents, d.recommendation) == (0, 2, R.SCALE_DOWN)


@pytest.mark.parametrize("busy", [AgentState.PAUSED, AgentState.WORKING, AgentState.STARTING, AgentState.DRAINING])
def test_no_work_any_non_idle_active_agent_scales_down(busy: AgentState) -> None:
    d = run(0, 0, [agent(AgentState.IDLE, idle_secs=TIMEOUT * 10), agent(busy, idle_secs=TIMEOUT * 10)])
    assert (d.active_agents, d.recommendation) == (2, R.SCALE_DOWN)


def test_no_work_all_active_agents_idle_past_the_timeout_scale_to_zero() -> None:
    d = run(0, 0, [agent(AgentState.IDLE, idle_secs=TIMEOUT), agent(AgentState.IDLE, idle_secs=TIMEOUT * 3)])
    assert (d.active_agents, d.desired_agents, d.recommendation) == (2, 0, R.SCALE_TO_ZERO)


def test_idle_time_counts_whole_seconds() -> None:
    assert run(0, 0, [agent(AgentState.IDLE, idle_secs=TIMEOUT - 0.5)]).recommendation is R.SCALE_DOWN
    assert run(0, 0, [agent(AgentState.IDLE, idle_secs=TIMEOUT + 0.9)]).recommendation is R.SCALE_TO_ZERO


def test_work_with_only_cold_agents_scales_up() -> None:
    d = run(2, 0, [agent(AgentState.COLD), agent(AgentState.COLD)])
    assert d == ScalingDecision(active_agents=0, cold_agents=2, desired_agents=2, recommendation=R.SCALE_UP)


def test_work_with_fewer_units_than_active_agents_is_steady() -> None:
    d = run(1, 0, [agent(AgentState.WORKING), agent(AgentState.IDLE), agent(AgentState.IDLE)])
    assert (d.desired_agents, d.active_agents, d.recommendation) == (1, 3, R.STEADY)


@pytest.mark.parametrize("agents", [[], [agent(AgentState.IDLE, idle_secs=TIMEOUT * 10)]], ids=["none", "one"])
def test_max_agents_zero_with_work_is_steady_never_zero(agents: list[Agent]) -> None:
    d = run(3, 1, agents, max_agents=0)
    assert (d.desired_agents, d.recommendation) == (0, R.STEADY)


def test_idle_timeout_zero_with_active_agents_scales_down() -> None:
    d = run(0, 0, [agent(AgentState.IDLE, idle_secs=TIMEOUT * 10)], idle_timeout_secs=0)
    assert d.recommendation is R.SCALE_DOWN


def test_idle_timeout_zero_without_active_agents_scales_to_zero() -> None:
    assert run(0, 0, [agent(AgentState.COLD)], idle_timeout_secs=0).recommendation is R.SCALE_TO_ZERO


def test_only_in_flight_work_below_active_agents_scales_down() -> None:
    d = run(0, 1, [agent(AgentState.WORKING), agent(AgentState.IDLE)])
    assert (d.desired_agents, d.active_agents, d.recommendation) == (1, 2, R.SCALE_DOWN)


def test_in_flight_work_matching_active_agents_is_steady() -> None:
    assert run(0, 2, [agent(AgentState.WORKING), agent(AgentState.WORKING)]).recommendation is R.STEADY


def test_reference_scale_up_expectation() -> None:
    d = run(2, 0, [agent(AgentState.STARTING)])
    assert d == ScalingDecision(active_agents=1, cold_agents=0, desired_agents=2, recommendation=R.SCALE_UP)


def test_desired_is_capped_by_max_agents() -> None:
    d = run(40, 5, [], max_agents=10)
    assert (d.desired_agents, d.recommendation) == (10, R.SCALE_UP)


@pytest.mark.parametrize("state", [AgentState.STOPPED, AgentState.ERROR])
def test_stopped_and_errored_agents_are_neither_active_nor_cold(state: AgentState) -> None:
    d = run(0, 0, [agent(state)])
    assert (d.active_agents, d.cold_agents, d.recommendation) == (0, 0, R.SCALE_TO_ZERO)
