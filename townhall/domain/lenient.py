"""Enums read from text that other tools (or people) wrote."""

from __future__ import annotations

import enum
from typing import Any, ClassVar, Iterable, Mapping, Self

from townhall.domain_errors import InvalidInput

_PARSED_CAP = 256


class LenientEnum(str, enum.Enum):
    """A ``str`` enum whose :meth:`parse` ignores case and surrounding blanks.

    A subclass names other spellings with ``aliases`` and what an unknown (or missing) value reads as
    with ``fallback``, both as member values in the class statement::

        class TaskState(LenientEnum, fallback="pending", aliases={"in_flight": "running"}): ...

    An enum of user input has no fallback but ``invalid=(field, message)``: an unknown value raises
    :class:`~townhall.domain_errors.InvalidInput` for ``field``, the message formatted with ``value``
    (the text as given). Otherwise an unknown value without a fallback raises ``ValueError``.

    A state enum names the states a record does not leave with ``terminal`` (member values, as above);
    :attr:`is_terminal` and :meth:`terminal_states` answer from it.
    """

    _fallback: ClassVar[str | None]
    _aliases: ClassVar[Mapping[str, str]]
    _invalid: ClassVar[tuple[str, str] | None]
    _terminal: ClassVar[frozenset[str]]

    def __init_subclass__(
        cls,
        *,
        fallback: str | None = None,
        aliases: Mapping[str, str] | None = None,
        invalid: tuple[str, str] | None = None,
        terminal: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls._fallback = fallback
        cls._aliases = dict(aliases or {})
        cls._invalid = invalid
        cls._terminal = frozenset(terminal)

    @classmethod
    def parse(cls, value: str | None) -> Self:
        # Records repeat a handful of spellings: remember what each one read as (a pure function of the
        # text; at most _PARSED_CAP spellings per enum, so junk values cannot grow it without bound).
        parsed = cls.__dict__.get("_parsed")
        if parsed is None:
            parsed = {}
            setattr(cls, "_parsed", parsed)
        member = parsed.get(value)
        if member is None:
            member = cls._parse(value)
            if len(parsed) < _PARSED_CAP:
                parsed[value] = member
        return member

    @classmethod
    def _parse(cls, value: str | None) -> Self:
        text = (value or "").strip().lower()
        try:
            return cls(cls._aliases.get(text, text))
        except ValueError:
            if cls._fallback is not None:
                return cls(cls._fallback)
            if cls._invalid is not None:
                field, message = cls._invalid
                raise InvalidInput(field, message.format(value=value)) from None
            raise

    @classmethod
    def terminal_states(cls) -> frozenset[Self]:
        return frozenset(member for member in cls if member.is_terminal)

    @property
    def is_terminal(self) -> bool:
        return self.value in self._terminal
