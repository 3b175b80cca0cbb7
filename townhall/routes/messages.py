"""``POST /v1/messages/send`` (``town.write``)."""

from __future__ import annotations

import msgspec
from litestar import post
from litestar.params import JSONBody

from townhall.auth import Scope
from townhall.http.dependencies import Services
from townhall.routes.common import Resource, problems
from townhall.routes.fields import MessageKindName, Text
from townhall.views.messages import SendResponse


class SendRequest(msgspec.Struct):
    to: str
    message: Text
    #: ``task`` (default), ``query``, ``info``, ``ack``, ``status_request`` (answered by the worker with a
    #: ``status_response``) or ``shutdown`` (the worker stops when done); anything else is a 422. The last two
    #: carry no text: ``message`` is ignored for them.
    kind: MessageKindName = "task"
    from_: str | None = msgspec.field(default=None, name="from")
    urgent: bool = False


class MessageController(Resource, path="/messages", tag="messages", scope=Scope.TOWN_WRITE):
    @post("/send", status_code=201, responses=problems(404, 409, body=True),
          summary="Send a message to an agent (urgent: to its urgent inbox)")
    async def send(self, services: Services, data: JSONBody[SendRequest]) -> SendResponse:
        """Send a message of `kind` to an agent's inbox (`urgent`: its urgent inbox). `status_request` is
        answered by the agent's worker; `shutdown` makes it stop when done."""
        sent = await services.messages.send(data.to, data.message, kind=data.kind, sender=data.from_,
                                            urgent=data.urgent)
        return SendResponse.of(sent)
