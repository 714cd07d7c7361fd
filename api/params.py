"""The query parameters of the data routes, each declared once: its type, bounds and
default (one ``Annotated`` type with FastAPI's ``Query``) in one table.

The table builds both readers of a query string: the FastAPI dependencies the routes
declare (:func:`dependency`: their OpenAPI, their 422s) and the records fast path's
parsers (:meth:`Param.parse`, the same pydantic validation FastAPI runs on a query
value). So a bound changed here changes both, and tests/api/test_params.py checks every
bound on both paths.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Query
from pydantic import BeforeValidator, TypeAdapter
from pydantic_core import PydanticCustomError

from core.queries import MAX_PAGE, Filters

T = TypeVar("T")

CODE_MAX = 64  # characters of a code: item_code, line_code, plant, item_group
CURSOR_MAX = 200  # characters of a cursor (a next_cursor is far shorter)
DEFAULT_PAGE = 100

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: object) -> date:
    """Only ``YYYY-MM-DD``: pydantic's lax ``date`` reads ``0`` or ``86400`` as a Unix
    time (1970-01-01, 1970-01-02), and ``date.fromisoformat`` takes ``20260301``."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("date_format", "must be a calendar date YYYY-MM-DD, got {value}",
                              {"value": repr(value)})


IsoDate = Annotated[date, BeforeValidator(_iso_date)]  # the spec still says format: date
OrderName = Literal["asc", "desc"]
ShiftName = Literal["D", "N"]
CodeParam = Annotated[str | None, Query(min_length=1, max_length=CODE_MAX)]


@dataclass(frozen=True)
class Param:
    """One query parameter: its name, its ``Annotated`` type (bounds and description in
    ``Query``), and its default."""

    name: str
    annotation: Any
    default: Any = None
    _adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_adapter", TypeAdapter(self.annotation))

    def parse(self, raw: str) -> Any:
        """``raw`` as the route reads it; pydantic's ValidationError where it refuses."""
        return self._adapter.validate_python(raw)

    def parameter(self) -> inspect.Parameter:
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY,
                                 default=self.default, annotation=self.annotation)


FILTERS: tuple[Param, ...] = (
    Param("date_from", Annotated[IsoDate | None, Query(
        description="first work_date, inclusive: a calendar date `YYYY-MM-DD`")]),
    Param("date_to", Annotated[IsoDate | None, Query(
        description="last work_date, inclusive: a calendar date `YYYY-MM-DD`, not before "
                    "`date_from` (else 422 naming `date_to`)")]),
    Param("item_code", CodeParam),
    Param("line_code", CodeParam),
    Param("shift", Annotated[ShiftName | None, Query(description="D day, N night")]),
    Param("plant", CodeParam),
    Param("item_group", CodeParam),
)

# The records route's own: its page, its cursor, its order.
PAGE: tuple[Param, ...] = (
    Param("limit", Annotated[int, Query(ge=1, le=MAX_PAGE,
                                        description=f"page size, 1..{MAX_PAGE}")],
          DEFAULT_PAGE),
    Param("cursor", Annotated[str | None, Query(
        max_length=CURSOR_MAX,
        description="opaque: the `next_cursor` of the previous page as given, with the "
                    "same `order`; any other value is a 422 naming `cursor`")]),
    Param("order", OrderName, "asc"),
)

RECORDS: Mapping[str, Param] = {p.name: p for p in (*FILTERS, *PAGE)}


@dataclass(frozen=True, slots=True)
class Page:
    """The records route's page parameters, parsed."""

    limit: int = DEFAULT_PAGE
    cursor: str | None = None
    order: OrderName = "asc"


def dependency(params: Iterable[Param], build: Callable[..., T]
               ) -> Callable[..., Awaitable[T]]:
    """A FastAPI dependency taking ``params`` as query parameters (as declared) and
    returning ``build(**values)``."""

    async def depend(**values: Any) -> T:  # async: no thread hop per request
        return build(**values)

    depend.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [p.parameter() for p in params])
    return depend


record_filters = dependency(FILTERS, Filters)
record_page = dependency(PAGE, Page)
