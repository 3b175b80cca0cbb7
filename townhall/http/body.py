"""JSON request bodies decoded once, with the declared types taken strictly (the ``/v1`` router's DTO)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from litestar.dto import AbstractDTO
from litestar.exceptions import ClientException, ValidationException
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Reference, Schema


class StrictJSONBody(AbstractDTO[Any]):
    """Decodes a handler's ``data: JSONBody[T]`` straight into ``T`` with msgspec's strict rules.

    Litestar alone decodes a body to builtins and then converts it leniently (``0`` or ``"true"`` pass
    as booleans), so a value of the wrong type would be accepted where the document says it is
    invalid. As a DTO this decoder replaces Litestar's decoding instead of checking the body a second
    time; a wrong type is a 422 naming the field. It changes nothing in the OpenAPI document: the
    schema is the one Litestar makes for ``T`` without a DTO.
    """

    _decoders: ClassVar[dict[Any, msgspec.json.Decoder[Any]]] = {}

    @classmethod
    def create_for_field_definition(cls, field_definition: FieldDefinition, handler_id: str,
                                    backend_cls: Any = None) -> None:
        if field_definition.name == "data" and field_definition.annotation not in cls._decoders:
            cls._decoders[field_definition.annotation] = msgspec.json.Decoder(field_definition.annotation,
                                                                             strict=True)

    @classmethod
    def create_openapi_schema(cls, field_definition: FieldDefinition, handler_id: str,
                              schema_creator: SchemaCreator) -> Reference | Schema:
        return schema_creator.for_field_definition(field_definition)

    def decode_bytes(self, value: bytes) -> Any:
        field = self.asgi_connection.route_handler.parsed_data_field
        assert field is not None  # Litestar calls a data DTO only for a handler with a body
        try:
            return self._decoders[field.annotation].decode(value)
        except msgspec.ValidationError as exc:
            raise ValidationException(detail="Invalid request body",
                                      extra=[{"message": str(exc), "key": "data", "source": "body"}]) from None
        except msgspec.DecodeError as exc:
            raise ClientException(_malformed_detail(value, exc)) from None


def _malformed_detail(value: bytes, typed_error: msgspec.DecodeError) -> str:
    """The 400's detail for a body that is not JSON, worded by an untyped parse as Litestar words it
    (a typed parse skips unknown members differently and names other bytes for some errors)."""
    try:
        msgspec.json.decode(value)
    except msgspec.DecodeError as exc:
        return str(exc)
    return str(typed_error)
