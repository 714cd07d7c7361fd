"""The FastAPI app factory: ``create_app(config, hub=None)``; pure, no I/O at build time."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from api.data import DataSource
from api.fastpath import CacheHitMiddleware
from api.routes import data_router, service_router
from core.config import Config
from core.queries import DataUnavailable, InvalidQuery
from core.store import store_of
from core.version import package_version

if TYPE_CHECKING:
    from core.hub import Hub

log = logging.getLogger(__name__)

PREFIX = "/api/v1"


def create_app(config: Config, hub: Hub | None = None,
               source: DataSource | None = None) -> FastAPI:
    """The data API for ``config.db_path``; with ``hub``, status/control and gating."""
    watch = config.watch
    store = hub.publisher.store if hub is not None else store_of(config)
    source = source or DataSource(
        store, hub=hub, retry_after=watch.settle_interval * watch.settle_checks,
        record_readers=config.api.record_readers,
    )
    app = FastAPI(
        title="Production Data Hub API",
        version=package_version(),
        description=(
            "Production data from the ERP's exports, served from the snapshot the hub last "
            "verified and published: every data response carries `ETag`, `X-DB-Version` "
            "(the snapshot) and `X-Data-As-Of` (when the ERP wrote that export); send "
            "`If-None-Match` to get 304 when nothing changed. An export being written or "
            "held back never interrupts the answers: the last good snapshot is served. "
            "503 with `Retry-After` only before the first export has been published."
        ),
    )
    app.state.source = source
    app.state.hub = hub
    app.include_router(data_router(source), prefix=PREFIX)
    app.include_router(service_router(source, hub, config.api.token), prefix=PREFIX)
    app.add_middleware(CacheHitMiddleware, source=source, prefix=PREFIX)  # inside CORS
    if config.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.api.cors_origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match"],
            expose_headers=["ETag", "X-DB-Version", "X-Data-As-Of", "Retry-After"],
        )

    @app.exception_handler(DataUnavailable)
    async def unavailable(request: Request, exc: DataUnavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.reason}, status_code=503,
            headers={"Retry-After": str(source.retry_after(exc)), "Cache-Control": "no-store"},
        )

    @app.exception_handler(InvalidQuery)
    async def invalid(request: Request, exc: InvalidQuery) -> JSONResponse:
        # The same shape as FastAPI's own 422s, so clients parse one format.
        return JSONResponse(
            {"detail": [{"type": "value_error", "loc": ["query", exc.param],
                         "msg": exc.message}]},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the hub's log"}, status_code=500)

    return app
