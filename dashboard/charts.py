"""The page's charts (Altair, which ships with Streamlit), from small aggregated rows.

:func:`spec` turns a chart into the Vega-Lite spec the page sends, once per view (the
caller caches it): Altair's build and schema validation cost more than the whole rest
of a warm script run. Its data are the aggregated rows, one per mark drawn; Altair's
own row limit (5,000) refuses anything like raw records.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

from core import queries as q
from core.words import Language
from dashboard.i18n import tr

_QTY = ",d"
_PCT = ".1%"
_GOOD = "#2E7D32"
_PLAN = "#9E9E9E"
_DEFECT = "#C62828"
_BAR = "#1565C0"
_TO_DICT = threading.Lock()  # Altair's conversion reads process-wide settings


def spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's Vega-Lite spec, its rows under ``datasets`` already in the Arrow form
    Streamlit sends (it passes bytes on as they are); without the default theme's fixed
    view size, as Streamlit draws Altair charts."""
    from streamlit.dataframe_util import convert_anything_to_arrow_bytes

    with _TO_DICT:
        out: dict[str, Any] = chart.to_dict()
    out.pop("config", None)
    out["datasets"] = {name: convert_anything_to_arrow_bytes(pd.DataFrame(rows))
                       for name, rows in out.get("datasets", {}).items()}
    return out


def daily_trend(rows: Sequence[q.DailySummary], lang: Language) -> alt.LayerChart:
    """Good vs plan per day (left axis) and the defect rate (right axis)."""
    df = pd.DataFrame(
        {
            "day": pd.to_datetime([r.work_date for r in rows]),
            tr("good", lang): [r.good_qty for r in rows],
            tr("plan", lang): [r.plan_qty for r in rows],
            "rate": [r.defect_rate for r in rows],
        }
    )
    series = [tr("good", lang), tr("plan", lang)]
    x = alt.X("day:T", title=tr("work_date", lang), axis=alt.Axis(format="%m-%d"))
    qty = (
        alt.Chart(df)
        .transform_fold(series, as_=["series", "qty"])
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("qty:Q", title=tr("quantity", lang), axis=alt.Axis(format=_QTY)),
            color=alt.Color("series:N", title=None,
                            scale=alt.Scale(domain=series, range=[_GOOD, _PLAN]),
                            legend=alt.Legend(orient="top")),
            tooltip=[alt.Tooltip("day:T", title=tr("work_date", lang), format="%Y-%m-%d"),
                     alt.Tooltip("series:N", title=" "),
                     alt.Tooltip("qty:Q", title=tr("quantity", lang), format=_QTY)],
        )
    )
    rate = (
        alt.Chart(df)
        .mark_line(strokeDash=[4, 3], color=_DEFECT)
        .encode(
            x=x,
            y=alt.Y("rate:Q", title=tr("defect_rate", lang),
                    axis=alt.Axis(format=_PCT, titleColor=_DEFECT)),
            tooltip=[alt.Tooltip("day:T", title=tr("work_date", lang), format="%Y-%m-%d"),
                     alt.Tooltip("rate:Q", title=tr("defect_rate", lang), format=".2%")],
        )
    )
    return alt.layer(qty, rate).resolve_scale(y="independent").properties(height=300)


def by_line(rows: Sequence[q.LineSummary], lang: Language) -> alt.Chart:
    df = pd.DataFrame(
        {
            "name": [r.line_name or r.line_code for r in rows],
            "good": [r.good_qty for r in rows],
            "plan": [r.plan_qty for r in rows],
            "achievement": [r.achievement for r in rows],
            "rate": [r.defect_rate for r in rows],
        }
    )
    return (
        alt.Chart(df)
        .mark_bar(color=_BAR)
        .encode(
            y=alt.Y("name:N", title=None, sort=None,
                    axis=alt.Axis(labelLimit=260, labelOverlap=False)),
            x=alt.X("good:Q", title=tr("good_qty", lang), axis=alt.Axis(format=_QTY)),
            tooltip=[alt.Tooltip("name:N", title=tr("line", lang)),
                     alt.Tooltip("good:Q", title=tr("good_qty", lang), format=_QTY),
                     alt.Tooltip("plan:Q", title=tr("plan", lang), format=_QTY),
                     alt.Tooltip("achievement:Q", title=tr("achievement", lang), format=_PCT),
                     alt.Tooltip("rate:Q", title=tr("defect_rate", lang), format=".2%")],
        )
        .properties(height=max(160, 24 * len(df)))
    )


def top_items(rows: Sequence[q.ItemSummary], lang: Language) -> alt.Chart:
    df = pd.DataFrame(
        {
            "name": [f"{r.item_name or ''} ({r.item_code})" for r in rows],
            "good": [r.good_qty for r in rows],
            "rate": [r.defect_rate for r in rows],
        }
    )
    return (
        alt.Chart(df)
        .mark_bar(color=_GOOD)
        .encode(
            y=alt.Y("name:N", title=None, sort="-x",
                    axis=alt.Axis(labelLimit=260, labelOverlap=False)),
            x=alt.X("good:Q", title=tr("good_qty", lang), axis=alt.Axis(format=_QTY)),
            tooltip=[alt.Tooltip("name:N", title=tr("item", lang)),
                     alt.Tooltip("good:Q", title=tr("good_qty", lang), format=_QTY),
                     alt.Tooltip("rate:Q", title=tr("defect_rate", lang), format=".2%")],
        )
        .properties(height=max(160, 26 * len(df)))
    )


def pareto(rows: Sequence[q.DefectShare], lang: Language) -> alt.LayerChart:
    """Defect quantities by type, largest first, with the cumulative share."""
    df = pd.DataFrame(
        {
            "name": [r.defect_name or r.defect_code for r in rows],
            "qty": [r.qty for r in rows],
            "cum": [r.cumulative_share for r in rows],
        }
    )
    order = list(df["name"])
    x = alt.X("name:N", title=tr("defect_type", lang), sort=order,
              axis=alt.Axis(labelAngle=-30))
    bars = alt.Chart(df).mark_bar(color=_DEFECT).encode(
        x=x,
        y=alt.Y("qty:Q", title=tr("defect_qty", lang), axis=alt.Axis(format=_QTY)),
        tooltip=[alt.Tooltip("name:N", title=tr("defect_type", lang)),
                 alt.Tooltip("qty:Q", title=tr("defect_qty", lang), format=_QTY),
                 alt.Tooltip("cum:Q", title=tr("cumulative_share", lang), format=_PCT)],
    )
    line = alt.Chart(df).mark_line(point=True, color="#37474F").encode(
        x=x,
        y=alt.Y("cum:Q", title=tr("cumulative_share", lang),
                scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
    )
    return alt.layer(bars, line).resolve_scale(y="independent").properties(height=300)
