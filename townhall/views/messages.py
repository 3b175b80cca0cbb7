"""``POST /v1/messages/send`` (``tt send``)."""

from __future__ import annotations

from townhall.views.copied import Copied


# What :class:`townhall.services.messages.SentMessage` holds.
class SendResponse(Copied):
    message_id: str
    to_agent: str
    urgent: bool
