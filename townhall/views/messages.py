"""``POST /v1/messages/send`` (``tt send``)."""

from __future__ import annotations

import msgspec

from townhall.services.messages import SentMessage


class SendResponse(msgspec.Struct):
    message_id: str
    to_agent: str
    urgent: bool

    @classmethod
    def of(cls, sent: SentMessage) -> SendResponse:
        return cls(message_id=sent.message_id, to_agent=sent.to_agent, urgent=sent.urgent)
