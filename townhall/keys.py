"""Every Redis key townhall reads or writes, in one place.

The upstream layout (tinytown 0.10, reference §4) is kept exactly so the original ``tt`` and townhall
can share a town. Keys marked *townhall's own* are indexes and counters that only this implementation
maintains; they are rebuilt at startup (see :mod:`townhall.store.reconcile`) so records written by
other tools are never missed. See ``docs/redis-layout.md``.
"""

from __future__ import annotations

from uuid import UUID

#: Suffixes of the task counts hash, of the task history keys and of the task id index; the task scripts
#: derive the history and id index key names from the counts key (see ``store/history_lua.py``).
COUNTS_SUFFIX = "stats:tasks"
HISTORY = "idx:history"
TASK_IDS = "idx:tasks:ids"

DOCKET_GROUP = "workers"


class TownKeys:
    def __init__(self, town: str) -> None:
        self.town = town
        self.prefix = f"tt:{town}:"

    # ---- upstream layout -------------------------------------------------------------------
    def agent(self, agent_id: str | UUID) -> str:
        return f"{self.prefix}agent:{agent_id}"

    def inbox(self, agent_id: str | UUID) -> str:
        return f"{self.prefix}inbox:{agent_id}"

    def urgent(self, agent_id: str | UUID) -> str:
        return f"{self.prefix}urgent:{agent_id}"

    def activity(self, agent_id: str | UUID) -> str:
        return f"{self.prefix}activity:{agent_id}"

    def stop(self, agent_id: str | UUID) -> str:
        return f"{self.prefix}stop:{agent_id}"

    def task(self, task_id: str | UUID) -> str:
        return f"{self.prefix}task:{task_id}"

    @property
    def backlog(self) -> str:
        return f"{self.prefix}backlog"

    @property
    def docket(self) -> str:
        return f"{self.prefix}docket:tasks"

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    def agent_events(self, agent_id: str | UUID) -> str:
        return f"{self.prefix}events:agent:{agent_id}"

    def mission_events_stream(self, mission_id: str | UUID) -> str:
        return f"{self.prefix}events:mission:{mission_id}"

    def mission(self, mission_id: str | UUID) -> str:
        return f"{self.prefix}mission:{mission_id}"

    def mission_sub(self, mission_id: str | UUID, part: str) -> str:
        """``work``, ``watch``, ``events``, ``control`` or ``dispatch_lock``."""
        return f"{self.prefix}mission:{mission_id}:{part}"

    @property
    def missions_active(self) -> str:
        return f"{self.prefix}mission:active"

    # ---- townhall's own --------------------------------------------------------------------
    @property
    def agent_index(self) -> str:
        """Set of every agent id (so listing never needs KEYS)."""
        return f"{self.prefix}idx:agents"

    @property
    def mission_index(self) -> str:
        """Set of every mission id."""
        return f"{self.prefix}idx:missions"

    def tasks_in_state(self, state: str) -> str:
        """Set of task ids per non-terminal state (pending/assigned/running)."""
        return f"{self.prefix}idx:tasks:{state}"

    @property
    def history(self) -> str:
        """Sorted set of every task id scored by its ``created_at`` (epoch ms): the task history.
        ``history_state`` / ``history_agent`` / ``history_tag`` are its slices, with the same scores
        (the task scripts derive these names from ``task_counts``: see ``store/history_lua.py``)."""
        return f"{self.prefix}{HISTORY}"

    def history_state(self, state: str) -> str:
        """History slice: the tasks now in ``state`` (each task is in exactly one)."""
        return f"{self.prefix}{HISTORY}:state:{state}"

    def history_agent(self, agent_id: str) -> str:
        """History slice: the tasks ever assigned to the agent (a reader checks ``assigned_to``)."""
        return f"{self.prefix}{HISTORY}:agent:{agent_id}"

    def history_tag(self, tag: str) -> str:
        """History slice: the tasks ever tagged ``tag`` (missions tag theirs ``mission:<id>``)."""
        return f"{self.prefix}{HISTORY}:tag:{tag}"

    @property
    def task_ids(self) -> str:
        """Sorted set (all scores 0) of every task id, so an id prefix is a range lookup. Kept by the
        history Lua with the history (its name derived from ``task_counts`` the same way)."""
        return f"{self.prefix}{TASK_IDS}"

    @property
    def task_counts(self) -> str:
        """Hash state -> number of task records in that state (terminal states included)."""
        return f"{self.prefix}{COUNTS_SUFFIX}"

    @property
    def tasks_completed_total(self) -> str:
        """A true counter: incremented each time a task becomes completed, never decremented."""
        return f"{self.prefix}stats:tasks_completed_total"

    def processing(self, agent_id: str | UUID) -> str:
        """Lists backend: messages a worker took and has not finished (at-least-once delivery)."""
        return f"{self.prefix}processing:{agent_id}"

    def worker_alive(self, agent_id: str | UUID) -> str:
        """String with a TTL, refreshed by a live worker's heartbeat."""
        return f"{self.prefix}alive:{agent_id}"

    def cli_group(self, agent_id: str | UUID) -> str:
        """String ``host:pgid``: the process group of the CLI a worker is running for the agent."""
        return f"{self.prefix}cli:{agent_id}"

    @property
    def wake_shared(self) -> str:
        """Lists backend: a token list workers block on to learn that shared work arrived."""
        return f"{self.prefix}wake:shared"

    @property
    def spawn_lock(self) -> str:
        """String with a short TTL: held while a spawn checks name uniqueness and ``max_agents``."""
        return f"{self.prefix}lock:spawn"

    def rate_bucket(self, kind: str, who: str) -> str:
        """Hash ``tokens``, ``at`` with a TTL: one rate-limit bucket (``reads``/``writes``/``auth``) of
        one caller (``principal:{id}`` or ``ip:{address}``), shared by every townhall process."""
        return f"{self.prefix}ratelimit:{kind}:{who}"

    @property
    def last_recommendation(self) -> str:
        """String: the scaling recommendation last announced on the event stream (so a change is
        announced once, whichever replica or request computes it)."""
        return f"{self.prefix}meta:last_recommendation"

    @property
    def reconciled_at(self) -> str:
        """String: when the last startup reconcile finished (RFC 3339)."""
        return f"{self.prefix}meta:reconciled_at"

    def rebuilding(self, key: str, token: str) -> str:
        """Temporary twin of one of our index keys while reconcile rebuilds it (then RENAMEd over)."""
        return f"{key}:rebuild:{token}"
