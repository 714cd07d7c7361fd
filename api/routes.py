"""Routes under ``/api/v1``: data (versioned, cached, ETag'd) and hub status/control."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.types import Send

from api import data
from api.data import (
    DEFAULT_TOP,
    CsvStart,
    DataSource,
    Served,
    raw_key,
)
from api.models import (
    AutoModeIn,
    DailyOut,
    DbHealth,
    ErrorOut,
    HealthOut,
    InvalidOut,
    ItemsOut,
    ItemSummaryOut,
    LinesOut,
    LineSummaryOut,
    ParetoOut,
    PublishIn,
    RecordsOut,
)
from api.params import CODE_MAX, OrderName, Page, record_filters, record_page
from api.security import control_dependency
from core.publisher import PublishRefused
from core.queries import MAX_PAGE, DataUnavailable, Filters, Kpis
from core.records_csv import csv_header, csv_rows
from core.state import StatusSnapshot

if TYPE_CHECKING:
    from core.hub import Hub

log = logging.getLogger(__name__)

SortName = Literal[
    "good_qty", "defect_qty", "plan_qty", "records", "defect_rate", "achievement", "code"
]

_VERSION_HEADERS = {
    "ETag": {"description": "DB version + query; send back as If-None-Match",
             "required": True, "schema": {"type": "string"}},
    "X-DB-Version": {"description": "version of the published snapshot the data came from",
                     "required": True, "schema": {"type": "string"}},
    "X-Data-As-Of": {"description": "when the ERP wrote that export (ISO-8601, UTC)",
                     "required": True, "schema": {"type": "string", "format": "date-time"}},
}
Responses = dict[int | str, dict[str, Any]]  # FastAPI's ``responses=`` of a route
DATA_RESPONSES: Responses = {
    200: {"headers": _VERSION_HEADERS},
    304: {"description": "Not modified: the `If-None-Match` you sent names the current "
                         "answer (same DB version, same query); no body",
          "headers": _VERSION_HEADERS},
    503: {"model": ErrorOut,
          "description": "No export has been verified and published yet; retry after "
                         "`Retry-After` seconds",
          "headers": {"Retry-After": {"description": "seconds to wait before retrying",
                                      "required": True,
                                      "schema": {"type": "integer", "minimum": 1}}}},
}

FILTER_RULES = (
    "`date_from` or `date_to` not a calendar date `YYYY-MM-DD` (a number is refused, "
    "not read as a Unix time)",
    "`date_to` before `date_from` (the error names `date_to`)",
    "`shift` other than `D` or `N`; a code (`item_code`, `line_code`, `plant`, "
    f"`item_group`) empty or longer than {CODE_MAX} characters",
)
LIMIT_RULE = f"`limit` not a whole number in 1..{MAX_PAGE}"
ORDER_RULE = "`order` other than `asc` or `desc`"
SORT_RULE = "`sort` not one of the listed names"
CURSOR_RULE = ("`cursor` not a `next_cursor` this API returned, or one returned for "
               "another `order`")


def invalid(*rules: str, filters: bool = True) -> dict[int | str, dict[str, Any]]:
    """The documented 422 of a data route: which values it refuses."""
    if not filters and not rules:
        return {422: {"model": InvalidOut,
                      "description": "Not sent: this route has no parameter to refuse"}}
    listed = "\n".join(f"- {rule}" for rule in (*(FILTER_RULES if filters else ()), *rules))
    return {422: {"model": InvalidOut,
                  "description": "A parameter is refused; `detail[].loc` names it "
                                 f"(e.g. `[\"query\", \"date_to\"]`). Refused:\n{listed}"}}


async def conditional(
    if_none_match: Annotated[str | None, Header(
        description="an `ETag` of an earlier answer (or several, or `*`): 304 without a "
                    "body if it is still the current one")] = None,
) -> None:
    """Puts If-None-Match into the spec; the routes (and the fastpath) read the raw header."""


FiltersDep = Annotated[Filters, Depends(record_filters)]


def _headers(served: Served | CsvStart) -> dict[str, str]:
    return {"ETag": served.etag, "X-DB-Version": served.version, "X-Data-As-Of": served.as_of,
            "Cache-Control": "no-cache"}


class CsvResponse(StreamingResponse):
    """A CSV stream from one snapshot; if that snapshot cannot be read any more (deleted by
    hand, a disk error), it stops visibly broken: the client gets a truncated transfer,
    never a CSV that looks complete."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        except DataUnavailable as exc:
            log.warning("CSV export cut off: %s", exc)  # no final chunk: the client sees it


def data_router(source: DataSource) -> APIRouter:
    router = APIRouter(tags=["data"], responses=DATA_RESPONSES,
                       dependencies=[Depends(conditional)])

    async def respond(request: Request, query: data.Query) -> Response:
        served = await source.answer(query, request.headers.get("if-none-match"))
        # The same URL will mean the same query: later hits can skip routing (fastpath).
        source.remember(raw_key(request.scope), query)
        if served.body is None:
            return Response(status_code=304, headers=_headers(served))
        return Response(served.body, media_type="application/json", headers=_headers(served))

    @router.get("/items", response_model=ItemsOut, summary="All items (master data)",
                responses=invalid(filters=False))
    async def get_items(request: Request) -> Response:
        return await respond(request, source.items())

    @router.get("/lines", response_model=LinesOut, summary="All production lines",
                responses=invalid(filters=False))
    async def get_lines(request: Request) -> Response:
        return await respond(request, source.lines())

    @router.get("/records", response_model=RecordsOut, summary="Production records, paged",
                responses=invalid(LIMIT_RULE, CURSOR_RULE, ORDER_RULE))
    async def get_records(request: Request, filters: FiltersDep,
                          page: Annotated[Page, Depends(record_page)]) -> Response:
        return await respond(request, source.records(filters, page.limit, page.cursor,
                                                     page.order))

    @router.get(
        "/records.csv",
        summary="Production records as CSV (UTF-8 with BOM, for Excel)",
        response_class=CsvResponse,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                         "headers": _VERSION_HEADERS},
                   **invalid(ORDER_RULE)},
    )
    async def get_records_csv(
        request: Request, filters: FiltersDep, order: OrderName = "asc"
    ) -> Response:
        start = await anyio.to_thread.run_sync(
            source.open_csv, filters, order, request.headers.get("if-none-match")
        )
        headers = _headers(start)
        if start.first is None:
            return Response(status_code=304, headers=headers)
        headers["Content-Disposition"] = 'attachment; filename="production_records.csv"'

        async def body() -> AsyncIterator[bytes]:
            yield csv_header() + csv_rows(start.first or [])
            rest = start.rest
            if rest is None:
                return
            while True:
                page = await anyio.to_thread.run_sync(next, rest, None)
                if page is None:
                    return
                yield csv_rows(page)

        return CsvResponse(body(), media_type="text/csv; charset=utf-8", headers=headers)

    @router.get("/summary/daily", response_model=DailyOut, summary="Totals per work day",
                responses=invalid())
    async def get_summary_daily(request: Request, filters: FiltersDep) -> Response:
        return await respond(request, source.summary_daily(filters))

    @router.get("/summary/items", response_model=ItemSummaryOut, summary="Totals per item",
                responses=invalid(LIMIT_RULE, SORT_RULE, ORDER_RULE))
    async def get_summary_items(
        request: Request,
        filters: FiltersDep,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE,
                                    description=f"top N, 1..{MAX_PAGE}")] = DEFAULT_TOP,
        sort: SortName = "good_qty",
        order: OrderName = "desc",
    ) -> Response:
        return await respond(request, source.summary_items(filters, limit, sort, order))

    @router.get("/summary/lines", response_model=LineSummaryOut, summary="Totals per line",
                responses=invalid(LIMIT_RULE, SORT_RULE, ORDER_RULE))
    async def get_summary_lines(
        request: Request,
        filters: FiltersDep,
        limit: Annotated[int | None, Query(
            ge=1, le=MAX_PAGE, description=f"top N, 1..{MAX_PAGE}; default all")] = None,
        sort: SortName = "code",
        order: OrderName = "asc",
    ) -> Response:
        return await respond(request, source.summary_lines(filters, limit, sort, order))

    @router.get("/defects/pareto", response_model=ParetoOut, summary="Defects by code",
                responses=invalid(LIMIT_RULE))
    async def get_pareto(
        request: Request,
        filters: FiltersDep,
        limit: Annotated[int | None, Query(
            ge=1, le=MAX_PAGE, description=f"top N, 1..{MAX_PAGE}; default all")] = None,
    ) -> Response:
        return await respond(request, source.pareto(filters, limit))

    @router.get("/kpis", response_model=Kpis, summary="Totals and rates of a period",
                responses=invalid())
    async def get_kpis(request: Request, filters: FiltersDep) -> Response:
        return await respond(request, source.kpis(filters))

    return router


def service_router(source: DataSource, hub: Hub | None, token: str) -> APIRouter:
    router = APIRouter(tags=["hub"])
    guard = [Depends(control_dependency(token))]
    no_hub: Responses = {
        503: {"model": ErrorOut, "description": "no hub in this process (pdh api)"}}
    control: Responses = {**no_hub,
               401: {"model": ErrorOut, "description": "token missing or wrong"},
               403: {"model": ErrorOut, "description": "remote control is off (no token)"}}

    def need_hub() -> Hub:
        if hub is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no hub in this process")
        return hub

    @router.get("/health", response_model=HealthOut, summary="Is the API up; can it read the DB")
    async def health() -> HealthOut:
        current, problem = await anyio.to_thread.run_sync(source.serving_now)
        return HealthOut(
            hub=hub is not None,
            db=DbHealth(exists=current is not None,
                        version=current.version if current else "",
                        as_of=current.published.as_of if current else None,
                        available=problem is None,
                        reason=problem.reason if problem else None),
        )

    @router.get("/hub/status", response_model=StatusSnapshot, responses=no_hub,
                summary="The hub's state (what the tray and dashboard show)")
    async def hub_status() -> StatusSnapshot:
        return need_hub().status()

    @router.post("/hub/check", response_model=StatusSnapshot, status_code=202,
                 dependencies=guard, responses=control,
                 summary="Check (and heal) the database now")
    async def hub_check() -> StatusSnapshot:
        the_hub = need_hub()
        the_hub.check_now()
        return the_hub.status()

    body_errors: Responses = {
        400: {"model": ErrorOut, "description": "the body cannot be read (e.g. not UTF-8)"},
        422: {"model": InvalidOut,
              "description": "the body is not JSON, or not exactly `{\"auto_mode\": true}` "
                             "or `false`: `auto_mode` must be a JSON boolean (`0`, `1`, "
                             "`\"false\"` are refused, naming `auto_mode`)"},
    }

    @router.post("/hub/publish", response_model=StatusSnapshot, dependencies=guard,
                 responses={**control, 409: {"model": ErrorOut, "description": (
                     "nothing is held back, or the held-back export cannot be published "
                     "(a damaged file); the detail says which")},
                     400: body_errors[400],
                     422: {"model": InvalidOut,
                           "description": "the body is not exactly `{\"force\": true}`"}},
                 summary="Publish the held-back export anyway (it failed verification)")
    async def hub_publish(body: PublishIn) -> StatusSnapshot:
        the_hub = need_hub()
        try:
            await the_hub.publish_anyway()
        except PublishRefused as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        return the_hub.status()

    @router.put("/hub/auto-mode", response_model=StatusSnapshot, dependencies=guard,
                responses={**control, **body_errors},
                summary="Turn automatic healing on or off")
    async def hub_auto_mode(body: AutoModeIn) -> StatusSnapshot:
        the_hub = need_hub()
        the_hub.set_auto_mode(body.auto_mode)
        return the_hub.status()

    return router
