"""Bodies that show a service result as it is: the same field names, only a different (documented)
type, so that the REST contract does not change when a service's own type does."""

from __future__ import annotations

from typing import Self

import msgspec


class Copied(msgspec.Struct):
    """A body whose fields are a subset of ``of``'s argument's, copied by name, nested structs too."""

    @classmethod
    def of(cls, result: msgspec.Struct) -> Self:
        # Through builtins, so that an enum becomes its value as the body's ``str`` field declares.
        return msgspec.convert(msgspec.to_builtins(result), cls)
