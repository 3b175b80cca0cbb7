"""``POST /v1/messages/send`` (``town.write``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, post
from litestar.params import JSONBody

from townhall.auth import Scope
from townhall.routes.common import problems, services, strict_body
from townhall.routes.fields import MessageKindName, Text

WRITE = {"scope": Scope.TOWN_WRITE}


class SendRequest(msgspec.Struct):
    to: str
    message: Text
    #: ``task`` (default), ``query``, ``info`` or ``ack``; anything else is a 422.
    kind: MessageKindName = "task"
    from_: str | None = msgspec.field(default=None, name="from")
    urgent: bool = False


class SendResponse(msgspec.Struct):
    message_id: str
    to_agent: str
    urgent: bool


@post("/messages/send", opt=WRITE, tags=["messages"], status_code=201, responses=problems(404, 409, body=True),
      before_request=strict_body,
      summary="Send a message to an agent (urgent: to its urgent inbox)")
async def send(request: Request[Any, Any, Any], data: JSONBody[SendRequest]) -> SendResponse:
    sent = await services(request).messages.send(
        data.to, data.message, kind=data.kind, sender=data.from_, urgent=data.urgent
    )
    return SendResponse(message_id=sent.message_id, to_agent=sent.to_agent, urgent=sent.urgent)


ROUTES = [send]
