"""Read-only data access to the ERP's file, shared by the API and the dashboard.

Every function here reads a published snapshot (:mod:`core.store`), never the ERP's
file, and blocks (sqlite3): the API runs them with ``anyio.to_thread``, Streamlit calls
them directly. Snapshots never change, so connections are opened ``immutable=1`` and
pooled (:data:`READERS`).

All SQL is parameterized; sort names come from a whitelist; sums happen in SQL.

By role: :mod:`~core.queries.model` (limits, errors, filters, result types),
:mod:`~core.queries.readers` (the pooled, time-limited connections),
:mod:`~core.queries.records` (pages, the cursor codec) and
:mod:`~core.queries.summaries` (master data and aggregates).

Exceptions::

    QueryError
    ├── DataUnavailable   the file is missing, unreadable, locked or being written (503)
    └── InvalidQuery      a bad filter, sort or cursor; ``param`` names it (422)
"""

from core.queries.model import (
    DEFAULT_PERIOD_DAYS,
    MAX_PAGE,
    RECORD_FIELDS,
    REQUIRED_COLUMNS,
    SHIFTS,
    DailySummary,
    DataUnavailable,
    DateRange,
    DefectShare,
    Filters,
    InvalidQuery,
    Item,
    ItemSummary,
    Kpis,
    Line,
    LineSummary,
    Order,
    QueryError,
    Record,
    RecordsPage,
    as_dicts,
)
from core.queries.readers import READ_TIME_LIMIT_S, READERS
from core.queries.records import decode_cursor, encode_cursor, iter_records, record_rows, records
from core.queries.summaries import (
    SORTS,
    date_range,
    default_filters,
    defects_pareto,
    items,
    kpis,
    lines,
    summary_daily,
    summary_items,
    summary_lines,
    work_date_span,
)

__all__ = [
    "DEFAULT_PERIOD_DAYS",
    "MAX_PAGE",
    "READ_TIME_LIMIT_S",
    "READERS",
    "RECORD_FIELDS",
    "REQUIRED_COLUMNS",
    "SHIFTS",
    "SORTS",
    "DailySummary",
    "DataUnavailable",
    "DateRange",
    "DefectShare",
    "Filters",
    "InvalidQuery",
    "Item",
    "ItemSummary",
    "Kpis",
    "Line",
    "LineSummary",
    "Order",
    "QueryError",
    "Record",
    "RecordsPage",
    "as_dicts",
    "date_range",
    "decode_cursor",
    "default_filters",
    "defects_pareto",
    "encode_cursor",
    "items",
    "iter_records",
    "kpis",
    "lines",
    "record_rows",
    "records",
    "summary_daily",
    "summary_items",
    "summary_lines",
    "work_date_span",
]
