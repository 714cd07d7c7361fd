"""Response and request bodies of the data API (the OpenAPI spec is built from these).

Rows are the dataclasses of :mod:`core.queries`, so the API and the dashboard read the
same shapes; the envelopes here name the lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from core.queries import (
    DailySummary,
    DefectShare,
    Item,
    ItemSummary,
    Line,
    LineSummary,
    Record,
)


class ItemsOut(BaseModel):
    items: list[Item]


class LinesOut(BaseModel):
    lines: list[Line]


class RecordsOut(BaseModel):
    records: list[Record]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class DailyOut(BaseModel):
    days: list[DailySummary]


class ItemSummaryOut(BaseModel):
    items: list[ItemSummary]


class LineSummaryOut(BaseModel):
    lines: list[LineSummary]


class ParetoOut(BaseModel):
    defects: list[DefectShare]


class DbHealth(BaseModel):
    exists: bool = Field(description="a verified snapshot is published")
    version: str = Field(description="the published snapshot's version ('' for none)")
    as_of: datetime | None = Field(None, description="when the ERP wrote that export")
    available: bool
    reason: str | None = None


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    hub: bool = Field(description="true when the API runs inside the hub")
    db: DbHealth


class AutoModeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Strict: 0, 1, "false" or "off" are 422, not read as a boolean.
    auto_mode: StrictBool = Field(description="a JSON boolean: true or false")


class PublishIn(BaseModel):
    """``{"force": true}``: the engineer accepts the held-back export."""

    model_config = ConfigDict(extra="forbid")

    force: Literal[True] = Field(description="must be true: publish despite the failed check")


class ErrorOut(BaseModel):
    detail: str


class Invalid(BaseModel):
    type: str = Field(description="what kind of error, e.g. value_error")
    loc: list[str | int] = Field(description='where: e.g. ["query", "date_to"]')
    msg: str


class InvalidOut(BaseModel):
    """A 422: FastAPI's own shape, also for the rules checked past parsing."""

    detail: list[Invalid]
