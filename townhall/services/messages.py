"""Messages between agents: REST/CLI send (kinds task/query/info/ack) and inbox peeks (reference §5.2–§5.3).

Unlike upstream, an unknown ``kind`` is refused (422) instead of silently becoming ``task``.
"""

from __future__ import annotations

import msgspec

from townhall.domain import (
    SUPERVISOR_ID,
    ConfirmationBody,
    InformationalBody,
    Message,
    MessageBody,
    QueryBody,
    ShutdownBody,
    StatusRequestBody,
    TaskAssignBody,
    TaskBody,
    ack_from_text,
    is_uuid,
)
from townhall.domain.lenient import LenientEnum
from townhall.services.agents import AgentService
from townhall.services.inputs import check_text
from townhall.store import Placement, TownStore
from townhall.store.messages import PEEK_LIMIT


class MessageKind(LenientEnum, invalid=("kind", "unknown message kind '{value}': expected task, query, info, ack, "
                                                "status_request or shutdown")):
    TASK = "task"
    QUERY = "query"
    INFO = "info"
    ACK = "ack"
    #: The worker answers with a ``status_response`` to the sender (the text is not sent).
    STATUS_REQUEST = "status_request"
    #: The worker finishes what it is doing and stops, exit 0 (the text is not sent).
    SHUTDOWN = "shutdown"

    def body(self, text: str) -> MessageBody:
        if self is MessageKind.STATUS_REQUEST:
            return StatusRequestBody()
        if self is MessageKind.SHUTDOWN:
            return ShutdownBody()
        if self is MessageKind.QUERY:
            return QueryBody(question=text)
        if self is MessageKind.INFO:
            return InformationalBody(summary_text=text)
        if self is MessageKind.ACK:
            return ConfirmationBody(ack_type=ack_from_text(text))
        return TaskBody(description=text)


class SentMessage(msgspec.Struct, frozen=True):
    """Where a sent message went."""

    message_id: str
    to_agent: str
    urgent: bool


class InboxItem(msgspec.Struct, frozen=True):
    """One message of an inbox peek, summarised."""

    id: str
    from_: str
    type: str
    summary: str
    #: The task a ``task_assign`` hands over (so a person can be shown its description).
    task_id: str | None = None


class InboxView(msgspec.Struct, frozen=True):
    """The first messages of an agent's mailbox and its counts."""

    agent_id: str
    total: int
    urgent: int
    messages: list[InboxItem]


class MessageService:
    def __init__(self, store: TownStore, agents: AgentService) -> None:
        self.store = store
        self.agents = agents

    async def send(
        self,
        to: str,
        text: str,
        *,
        kind: str | MessageKind = MessageKind.TASK,
        sender: str | None = None,
        urgent: bool = False,
    ) -> SentMessage:
        """Send ``text`` as a message of ``kind`` to an agent reference. ``sender``: any UUID (not
        checked, as upstream), an agent reference, or ``None`` for the supervisor. ``urgent`` puts it
        on the urgent inbox; otherwise it goes to the back of the regular inbox (priority normal)."""
        message_kind = kind if isinstance(kind, MessageKind) else MessageKind.parse(kind or MessageKind.TASK.value)
        check_text("message", text)
        recipient = await self.agents.resolve(to)
        from_id = await self.sender_id(sender)
        message = Message.new(from_id, recipient.id, message_kind.body(text))
        await self.deliver(message, urgent=urgent)
        return SentMessage(message_id=message.id, to_agent=recipient.id, urgent=urgent)

    async def sender_id(self, sender: str | None) -> str:
        if sender is None or not sender.strip():
            return SUPERVISOR_ID
        text = sender.strip()
        if is_uuid(text):
            return text.lower()
        return (await self.agents.resolve(text)).id

    async def deliver(self, message: Message, *, urgent: bool = False) -> Placement:
        """Put a ready-made message in its recipient's mailbox (placement by priority/urgent)."""
        return await self.store.messages.send(message, urgent=urgent)

    async def inbox(self, ref: str, limit: int = PEEK_LIMIT) -> InboxView:
        """Counts of both inboxes and the first ``limit`` regular messages, summarised."""
        agent = await self.agents.resolve(ref)
        lengths = (await self.store.messages.lengths([agent.id]))[agent.id]
        items = []
        for entry in await self.store.messages.peek(agent.id, limit):
            if entry.message is None:
                continue  # a message type this version does not know; counted in `total`
            m = entry.message
            task_id = m.body.task_id if isinstance(m.body, TaskAssignBody) else None
            items.append(InboxItem(id=m.id, from_=m.from_, type=m.type_label(), summary=m.summary(), task_id=task_id))
        return InboxView(agent_id=agent.id, total=lengths.inbox, urgent=lengths.urgent, messages=items)
