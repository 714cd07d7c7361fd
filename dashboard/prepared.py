"""What one view of the page needs, read and prepared: shared by the page and by the
warmer (:mod:`dashboard.warm`), which prepares the default view before anybody asks.

Everything here goes through :mod:`dashboard.data`'s caches (keyed on the snapshot's
version), so a view the warmer prepared costs a page only cache hits. The charts are
cached as finished Vega-Lite specs: building and validating them with Altair is most
of a warm script run (about 0.45 s of 0.55 s, measured), and each spec carries only the
aggregated rows its marks draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from core import queries as q
from core.words import LANGUAGES, Language
from dashboard import charts, data
from dashboard.data import Source
from dashboard.filters import Catalog, Choice

PAGE_SIZES = (50, 100, 500)
CHART_NAMES = ("daily", "lines", "items", "pareto")


@dataclass(frozen=True)
class Results:
    kpis: q.Kpis
    previous: q.Kpis | None
    previous_period: q.Filters | None
    daily: list[q.DailySummary]
    lines: list[q.LineSummary]
    items: list[q.ItemSummary]
    pareto: list[q.DefectShare]
    page: q.RecordsPage


def load_catalog(source: Source) -> Catalog:
    ver, p = source.version, str(source.path)
    return Catalog.build(data.date_range(ver, p), data.items(ver, p), data.lines(ver, p))


def load_results(source: Source, choice: Choice, limit: int, cursor: str | None) -> Results:
    ver, p = source.version, str(source.path)
    f = choice.filters()
    prev_f = f.previous_period()
    return Results(
        kpis=data.kpis(ver, p, f),
        previous=data.kpis(ver, p, prev_f) if prev_f else None,
        previous_period=prev_f,
        daily=data.summary_daily(ver, p, f),
        lines=data.summary_lines(ver, p, f),
        items=data.top_items(ver, p, f),
        pareto=data.defects_pareto(ver, p, f),
        page=data.records_page(ver, p, f, limit, cursor),
    )


@st.cache_data(max_entries=256, show_spinner=False)
def chart_specs(db_ver: str, path: str, filters: q.Filters, lang: Language) -> dict[str, Any]:
    """The four charts of a view as Vega-Lite specs (``None``: nothing to draw)."""
    daily = data.summary_daily(db_ver, path, filters)
    pareto = data.defects_pareto(db_ver, path, filters)
    return {
        "daily": charts.spec(charts.daily_trend(daily, lang)),
        "lines": charts.spec(charts.by_line(data.summary_lines(db_ver, path, filters), lang)),
        "items": charts.spec(charts.top_items(data.top_items(db_ver, path, filters), lang)),
        "pareto": charts.spec(charts.pareto(pareto, lang)) if pareto else None,
    }


def warm_default(source: Source) -> Choice:
    """Read and prepare the default view of ``source`` (both languages): what a page
    opened now without filters asks for. Returns the default choice."""
    catalog = load_catalog(source)
    choice = catalog.default()
    results = load_results(source, choice, PAGE_SIZES[0], None)
    if results.kpis.records:
        for lang in LANGUAGES:
            chart_specs(source.version, str(source.path), choice.filters(), lang)
    return choice
