"""One town's services, shared by the REST app, the CLI and the worker (built by :mod:`townhall.runtime`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from townhall.config import Town
from townhall.launchers import Launcher
from townhall.queues import QueueBackend
from townhall.services.actions import TaskActions
from townhall.services.agents import AgentService
from townhall.services.backlog import BacklogService
from townhall.services.control import AgentControl
from townhall.services.history import TaskHistory
from townhall.services.lifecycle import AgentLifecycle
from townhall.services.events import EventService
from townhall.services.logs import LogService
from townhall.services.messages import MessageService
from townhall.services.missions import MissionService
from townhall.services.recipients import WorkRecipients
from townhall.services.recovery import RecoveryService
from townhall.services.rescue import WorkRescue
from townhall.services.status import StatusService
from townhall.services.tasks import TaskService
from townhall.store import TownStore


@dataclass
class TownServices:
    town: Town
    store: TownStore
    queue: QueueBackend
    launcher: Launcher
    agents: AgentService = field(init=False)
    recipients: WorkRecipients = field(init=False)
    tasks: TaskService = field(init=False)
    history: TaskHistory = field(init=False)
    actions: TaskActions = field(init=False)
    logs: LogService = field(init=False)
    messages: MessageService = field(init=False)
    lifecycle: AgentLifecycle = field(init=False)
    control: AgentControl = field(init=False)
    backlog: BacklogService = field(init=False)
    recovery: RecoveryService = field(init=False)
    rescue: WorkRescue = field(init=False)
    missions: MissionService = field(init=False)
    status: StatusService = field(init=False)
    events: EventService = field(init=False)

    def __post_init__(self) -> None:
        self.agents = AgentService(self.town, self.store, self.launcher)
        # Restarting is the lifecycle's, built after the services it uses: looked up when needed.
        self.recipients = WorkRecipients(self.agents, restart=lambda agent_id: self.lifecycle.restart(agent_id))
        self.tasks = TaskService(self.store, self.recipients)
        self.history = TaskHistory(self.store, self.agents)
        self.actions = TaskActions(self.store, self.queue)
        self.logs = LogService(self.town, self.store, self.agents)
        self.messages = MessageService(self.store, self.agents)
        self.backlog = BacklogService(self.store, self.queue, self.recipients)
        self.recovery = RecoveryService(self.town, self.store, self.queue, self.recipients)
        self.rescue = WorkRescue(self.recovery)
        self.lifecycle = AgentLifecycle(self.town, self.store, self.agents, self.tasks, self.messages,
                                        self.rescue)
        self.control = AgentControl(self.store, self.agents)
        self.missions = MissionService(self.store)
        self.status = StatusService(self.town, self.store)
        self.events = EventService(self.store, self.agents)

