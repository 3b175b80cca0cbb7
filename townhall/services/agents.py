"""Agents: references, spawn, prune (reference §3.1, §5.4, §10.3); kill and restart are in
:mod:`townhall.services.lifecycle`.

Fixes over upstream: names are validated and unique among registered agents (GAP 15), ``max_agents``
is enforced (GAP 37), spawn starts a worker through the launcher (GAP 24), and every state change is
an atomic compare-and-set (GAP 23).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Sequence

import msgspec

from townhall.auth import Principal, Scope
from townhall.config import BUILTIN_CLIS, Town
from townhall.domain import (
    SUPERVISOR_ID,
    Agent,
    AgentState,
    is_reserved_agent_name,
    is_uuid,
    new_id,
    nickname_for,
)
from townhall.domain.agents import RESERVED_AGENT_NAMES
from townhall.domain_errors import AgentNotFound, AmbiguousAgent, Conflict, DomainError, InvalidInput, PresetNotAllowed
from townhall.launchers import CheckedLauncher, Launcher
from townhall.services.inputs import MIN_ID_PREFIX, check_agent_name, check_label, require_uuid
from townhall.store import TownStore

log = logging.getLogger(__name__)

#: States prune removes without ``all`` (upstream: not Cold).
PRUNABLE_STATES = (AgentState.STOPPED, AgentState.ERROR)
SPAWN_LOCK_WAIT_SECS = 3.0
_NICKNAME_TRIES = 16


class AgentRef(msgspec.Struct, frozen=True):
    """A resolved agent reference: the id, and the record unless it is the supervisor mailbox."""

    id: str
    agent: Agent | None = None

    @property
    def name(self) -> str:
        return self.agent.name if self.agent else "supervisor"


def candidate_label(agent: Agent) -> str:
    """How an ambiguity lists an agent: ``{label} ({short id})``, as upstream."""
    return f"{agent.display_label} ({agent.short_id})"


def matching_agents(agents: Sequence[Agent], ref: str) -> list[Agent]:
    """Agents whose name, display name, display label or 4-char short id equals ``ref``
    (ASCII case-insensitive), the name-based step of reference §3.1; when none does, agents whose id
    starts with ``ref`` (at least 4 characters: the ids ``tt`` prints can be typed back)."""
    wanted = ref.strip().lower()
    named = [
        a for a in agents
        if wanted in (a.name.lower(), a.display_name.lower(), a.display_label.lower(), a.short_id.lower())
    ]
    if named or len(wanted) < MIN_ID_PREFIX:
        return named
    return [a for a in agents if a.id.lower().startswith(wanted)]


def resolve_cli(town: Town, value: str | None) -> str:
    """A CLI preset name per reference §2.1, restricted to presets that exist (configured in
    ``[agent_clis]`` or built in): a request can never smuggle in a command string."""
    config = town.config
    commands = {**BUILTIN_CLIS, **{k: v.command for k, v in config.agent_clis.items()}}
    text = (value or "").strip() or config.default_cli.strip() or "claude"
    if text in commands:
        return text
    for key, command in commands.items():
        if text == command.strip():
            return key
    first = text.split()[0]
    inferred = {
        "claude": "claude", "auggie": "auggie", "aider": "aider", "gemini": "gemini", "cursor": "cursor",
    }.get(first)
    if first == "gh" and text.split()[1:2] == ["copilot"]:
        inferred = "copilot"
    elif first == "codex":
        inferred = "codex-mini" if "gpt-5.4-mini" in text else "codex"
    if inferred and inferred in commands:
        return inferred
    known = ", ".join(sorted(commands))
    # Say what *this* process knows: a preset added to tinytown.toml after townhall started is unknown
    # here until townhall reloads its config (SIGHUP), although a new `tt spawn` already sees it.
    raise InvalidInput("cli", f"unknown CLI preset '{text}': the running townhall knows {known}; add "
                              f"[agent_clis.{text.split()[0]}] to tinytown.toml and reload townhall (kill -HUP, "
                              f"or restart it)")


class AgentService:
    def __init__(self, town: Town, store: TownStore, launcher: Launcher) -> None:
        self.town = town
        self.store = store
        self.launcher = launcher

    # ---- references ---------------------------------------------------------------------------
    async def resolve(self, ref: str) -> AgentRef:
        """Resolve an agent reference exactly as reference §3.1; raises :class:`AgentNotFound` or
        :class:`AmbiguousAgent`."""
        text = (ref or "").strip()
        if text.lower() in RESERVED_AGENT_NAMES:
            return AgentRef(id=SUPERVISOR_ID)
        if not text:
            raise AgentNotFound(ref)
        if is_uuid(text):
            agent_id = text.lower()
            if agent_id == SUPERVISOR_ID:
                return AgentRef(id=SUPERVISOR_ID)
            agent = await self.store.agents.get(agent_id)
            if agent is None:
                raise AgentNotFound(ref)
            return AgentRef(id=agent.id, agent=agent)
        matches = matching_agents(await self.store.agents.list_all(), text)
        if not matches:
            raise AgentNotFound(ref)
        if len(matches) > 1:
            raise AmbiguousAgent(ref, [candidate_label(a) for a in matches])
        return AgentRef(id=matches[0].id, agent=matches[0])

    async def get(self, agent_id: str) -> Agent | None:
        return await self.store.agents.get(agent_id)

    async def list(self) -> list[Agent]:
        return await self.store.agents.list_all()

    # ---- spawn ----------------------------------------------------------------------------------
    async def spawn(
        self,
        name: str,
        *,
        cli: str | None = None,
        role_id: str | None = None,
        nickname: str | None = None,
        parent_agent_id: str | None = None,
        launch: bool = True,
        caller: Principal | None = None,
        pool: str | None = None,
    ) -> Agent:
        """Create an agent record (``Starting``) and, with ``launch``, start its worker.

        Raises :class:`InvalidInput` (empty/reserved/unsafe name, unknown ``cli``, bad parent id),
        :class:`Conflict` (name taken, ``max_agents`` reached). If the launcher fails the record is set
        ``Error`` and the launcher's error propagates (as a :class:`Conflict` if it was not a domain
        error). ``pool`` marks a record a pool worker registers for itself."""
        name = check_agent_name(name)
        if is_reserved_agent_name(name):
            raise InvalidInput("name", f"'{name}' is reserved for the well-known supervisor/conductor mailbox")
        cli_name = resolve_cli(self.town, cli)
        self.check_may_target(cli_name, caller)
        role = check_label("role_id", role_id)
        nick = check_label("nickname", nickname)
        parent = require_uuid("parent_agent_id", parent_agent_id) if parent_agent_id else None

        if launch:
            self.check_launchable(cli_name)
        token = new_id()
        await self._acquire_spawn_lock(token)
        try:
            agents = await self.store.agents.list_all()
            taken = matching_agents(agents, name)
            if taken:
                raise Conflict(
                    f"agent name '{name}' is already used by "
                    + ", ".join(candidate_label(a) for a in taken)
                    + " (prune it first or pick another name)"
                )
            live = sum(1 for a in agents if not a.state.is_terminal)
            limit = self.town.config.max_agents
            if live >= limit:
                raise Conflict(f"max_agents ({limit}) reached: {live} agents are not stopped")
            agent = Agent.new(name, cli_name, agent_id=_fresh_id(agents))
            if nick:
                agent.nickname = nick
            agent.role_id = role
            agent.parent_agent_id = parent
            agent.pool = pool
            await self.store.agents.create(agent)
        finally:
            await self.store.agents.release_spawn_lock(token)
        if launch:
            await self.launch(agent)
        return agent

    def check_may_target(self, cli_name: str, caller: Principal | None) -> None:
        """:class:`PresetNotAllowed` unless ``caller`` holds one of the preset's ``allowed_scopes``
        (``[agent_clis.<name>]``; empty or a built-in preset: any caller). ``None`` is a local caller
        (the CLI), which is not restricted."""
        preset = self.town.config.agent_clis.get(cli_name)
        allowed = preset.allowed_scopes if preset is not None else []
        if caller is not None and allowed and not any(caller.has(Scope(s)) for s in allowed):
            raise PresetNotAllowed(cli_name, list(allowed))

    def check_may_assign(self, target: AgentRef, caller: Principal | None) -> None:
        """Work given to an agent becomes its CLI's prompt: the same rule as spawning with that CLI."""
        if target.agent is not None:
            self.check_may_target(target.agent.cli, caller)

    async def _acquire_spawn_lock(self, token: str) -> None:
        deadline = time.monotonic() + SPAWN_LOCK_WAIT_SECS
        while not await self.store.agents.acquire_spawn_lock(token):
            if time.monotonic() > deadline:
                raise Conflict("another spawn is in progress; retry")
            await asyncio.sleep(0.02)

    def check_launchable(self, cli: str) -> None:
        """:class:`InvalidInput` (``cli``) if the launcher could not run preset ``cli`` now (e.g. its
        program is not on ``PATH``)."""
        if isinstance(self.launcher, CheckedLauncher):
            self.launcher.preflight(self.town, cli)

    async def launch(self, agent: Agent) -> None:
        """Start a worker for ``agent`` through the launcher; on failure the record is set ``Error``."""
        try:
            await self.launcher.launch(agent, self.town.root)
        except DomainError:
            await self._launch_failed(agent)
            raise
        except Exception as exc:  # the launcher is a plugin; its failure is the caller's answer
            log.warning("launcher %s failed for agent %s: %s", self.launcher.name, agent.name, exc)
            await self._launch_failed(agent)
            raise Conflict(f"could not start a worker for agent '{agent.name}': {exc}") from exc

    async def _launch_failed(self, agent: Agent) -> None:
        await self.store.agents.set_state(agent.id, AgentState.ERROR)
        await self.store.agents.add_activity(agent.id, f"❌ Worker launch failed ({self.launcher.name})")
        agent.state = AgentState.ERROR

    # ---- prune ----------------------------------------------------------------------------------
    async def prune(self, *, all_agents: bool = False) -> list[Agent]:
        """Delete Stopped/Error agents (every agent with ``all_agents``) with their mailboxes, activity
        and stop flag. Each deletion re-checks the state atomically, so an agent restarted meanwhile
        stays."""
        states = None if all_agents else PRUNABLE_STATES
        removed: list[Agent] = []
        for agent in await self.store.agents.list_all():
            if states is not None and agent.state not in states:
                continue
            if await self.store.agents.delete_if_state(agent.id, states):
                removed.append(agent)
        return removed


def _fresh_id(agents: Sequence[Agent]) -> str:
    """A new id whose automatic nickname is not another agent's name, so it cannot make a name
    reference ambiguous (a few tries; nicknames may still repeat among themselves)."""
    names = {a.name.lower() for a in agents}
    agent_id = new_id()
    for _ in range(_NICKNAME_TRIES):
        if nickname_for(agent_id).lower() not in names:
            break
        agent_id = new_id()
    return agent_id
