"""The task history: every task, newest first, filtered by state, agent, tag, mission and age, a page at
a time (``GET /v1/tasks``, ``tt tasks``).

A page reads one history slice (:mod:`townhall.store.history`): the smallest of those the filters
allow (the state sets, the agent's, the tag's, or the whole history), and checks each candidate's
record against the other filters. So a page costs its own size plus the candidates the filters
reject, at most :data:`SCAN_BUDGET` per request; a page cut short by that budget is shorter than asked
(even empty) but has a ``next_cursor`` to go on from. It never costs the length of the history.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from townhall.domain import Task, TaskState, is_uuid
from townhall.domain.timestamps import epoch_ms
from townhall.domain_errors import AgentNotFound, InvalidInput
from townhall.services.agents import AgentService
from townhall.services.inputs import check_label, require_timestamp, require_uuid
from townhall.store import Position, TownStore

DEFAULT_PAGE = 50
MAX_PAGE = 500
#: Index entries a request may read beyond its page when the filters reject candidates.
SCAN_BUDGET = 2000
STATE_NAMES = ", ".join(s.value for s in TaskState)


class HistoryPage(msgspec.Struct):
    """One page, newest first; ``next_cursor`` is ``None`` at the end of the history."""

    tasks: list[Task]
    next_cursor: str | None


def _state_list_pattern() -> str:
    name = "(" + "|".join(s.value for s in TaskState) + ")"
    return f"^({name}(,{name})*)?$"


#: What ``state`` may be: empty, or known state names (lowercase) separated by commas, nothing else, so
#: that the OpenAPI document tells valid from invalid by the pattern alone.
STATE_LIST_PATTERN = _state_list_pattern()
#: A ``next_cursor``: the ``created_at`` (epoch ms) and id of the last task of a page. Every value of this
#: form names a position in the history (the next page starts after it), so any match is accepted.
CURSOR_PATTERN = r"^[0-9]{1,15}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_STATE_LIST = re.compile(STATE_LIST_PATTERN)
_CURSOR = re.compile(CURSOR_PATTERN)


def parse_states(text: str | None) -> list[TaskState]:
    """A comma-separated list of task states (``None``/empty: every state); anything else is a 422
    naming the unknown parts and the known states."""
    text = text or ""
    if not _STATE_LIST.match(text):
        unknown = [part for part in text.split(",") if part not in TaskState._value2member_map_]
        listed = ", ".join(f"'{name}'" for name in unknown)
        raise InvalidInput("state", f"unknown state {listed}: expected one or more of {STATE_NAMES} "
                                    "(lowercase, comma-separated, no spaces)")
    return list(dict.fromkeys(TaskState(name) for name in text.split(",") if name))


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"limit must be from 1 to {MAX_PAGE}, got {limit}")
    return limit


def encode_cursor(position: Position) -> str:
    return f"{position.score}.{position.task_id}"


def decode_cursor(cursor: str) -> Position:
    """The position a ``next_cursor`` names; anything else is a 422 (``cursor``)."""
    if not _CURSOR.match(cursor):
        raise InvalidInput("cursor", "cursor is malformed: pass the next_cursor of a previous page unchanged")
    score, _, task_id = cursor.partition(".")
    return Position(int(score), task_id)


class TaskHistory:
    def __init__(self, store: TownStore, agents: AgentService) -> None:
        self.store = store
        self.agents = agents

    async def page(self, *, state: str | None = None, agent: str | None = None, tag: str | None = None,
                   mission: str | None = None, since: datetime | str | None = None, limit: int = DEFAULT_PAGE,
                   cursor: str | None = None) -> HistoryPage:
        """Tasks newest first (by ``created_at``), each filter narrowing: ``state`` (comma list),
        ``agent`` (name or id: the task's assignee), ``tag``, ``mission`` (tasks tagged
        ``mission:<id>``), ``since`` (created at or after; RFC 3339 text or a datetime). ``cursor``: a previous page's
        ``next_cursor``."""
        states = parse_states(state)
        limit = check_limit(limit)
        if isinstance(since, str):
            since = require_timestamp("since", since)
        position = decode_cursor(cursor) if cursor is not None else None
        agent_id = await self._agent_id(agent) if agent is not None else None
        tags = [t for t in (check_label("tag", tag), f"mission:{require_uuid('mission', mission)}"
                            if mission is not None else None) if t]
        h, k = self.store.history, self.store.keys
        choices = [[k.history]]
        if states:
            choices.append(h.state_keys(states))
        if agent_id:
            choices.append([k.history_agent(agent_id)])
        choices += [[k.history_tag(t)] for t in tags]
        sizes = dict(zip([key for keys in choices for key in keys],
                         await h.sizes([key for keys in choices for key in keys])))
        # On a tie the narrower slice wins: its entries are the ones the filters want.
        keys = min(reversed(choices), key=lambda ks: sum(sizes[key] for key in ks))
        by_state = keys != [k.history] and keys == h.state_keys(states)

        def wanted(task: Task) -> bool:
            return ((not states or task.state in states) and (agent_id is None or task.assigned_to == agent_id)
                    and all(t in task.tags for t in tags))

        min_score = epoch_ms(since) if since is not None else None
        found: list[Task] = []
        gone: list[str] = []
        misfiled: list[str] = []
        scanned, budget = 0, limit + SCAN_BUDGET
        try:
            while True:
                want = min(limit - len(found), budget - scanned) + 1
                window = await h.after(keys, position, want, min_score)
                for at, task in zip(window, await h.records(window)):
                    if len(found) == limit or scanned == budget:
                        return HistoryPage(found, encode_cursor(position) if position else None)
                    position, scanned = at, scanned + 1
                    if task is None:
                        gone.append(at.task_id)
                    elif wanted(task):
                        found.append(task)
                    elif by_state and task.state not in states:
                        misfiled.append(task.id)  # changed by a tool that does not keep our index
                if len(window) < want:
                    return HistoryPage(found, None)
        finally:
            await self._repair(keys, gone, misfiled)

    async def _agent_id(self, ref: str) -> str:
        """An agent reference as its id. A UUID also names an agent whose record is gone but whose
        tasks are still in the history (pruned agents)."""
        try:
            return (await self.agents.resolve(ref)).id
        except AgentNotFound:
            text = ref.strip().lower()
            if is_uuid(text) and (await self.store.history.sizes([self.store.keys.history_agent(text)]))[0]:
                return text
            raise

    async def _repair(self, keys: list[str], gone: list[str], misfiled: list[str]) -> None:
        """Entries of vanished records leave the history; records changed behind our back are filed
        under their state again."""
        if gone or misfiled:
            await self.store.history.reindex([*gone, *misfiled])
        for key in keys:
            if gone and key != self.store.keys.history:
                await self.store.history.drop(key, gone)
