"""The dashboard page: filters, KPIs, charts, records, and the DB Auto-Management panel.

Data come from :mod:`core.queries` directly (read-only, short connections), not through
the API: one hop less, it works while the API is off or down, and Streamlit's own
cache is keyed on the DB version. The API is used only for the hub's status and
controls, which live in the agent process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import tzinfo
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import streamlit as st

from core import queries as q
from core.config import Config, ConfigError
from core.words import LANGUAGES, SHARED, Language
from dashboard import access, data, panel, prepared
from dashboard.data import Availability, Note, Source
from dashboard.filters import Catalog, Choice, parse_query
from dashboard.i18n import (
    LANG_NAMES,
    delta_text,
    fmt_hours,
    fmt_int,
    fmt_pct,
    fmt_time,
    pick_language,
    tr,
)
from dashboard.prepared import PAGE_SIZES, Results
from dashboard.settings import load_dashboard_config

T = TypeVar("T")

LANG_KEY = "lang"
F_DATES, F_PLANT, F_LINE, F_GROUP, F_ITEM, F_SHIFT = (
    "f_dates", "f_plant", "f_line", "f_group", "f_item", "f_shift"
)
FILTERS_READY = "_filters_ready"
FILTER_NOTES = "_filter_notes"
DEFAULT_DATES = "_default_dates"
PAGING = "_paging"


def main() -> None:
    st.set_page_config(page_title=SHARED("title", "en"), page_icon=":material/factory:",
                       layout="wide")
    try:
        config = load_dashboard_config()
    except ConfigError as exc:
        st.error(f"**{tr('config_error_title', 'ko')} / {tr('config_error_title', 'en')}**"
                 f"\n\n{exc}")
        st.stop()
    lang = _language(config)
    if not access.page_open(config, lang):
        st.stop()  # the password form only: no data, no status before the password
    tz = _viewer_tz()
    status, problem = panel.fetch_status(config)
    st.session_state[panel.STATUS_KEY] = (status, problem)
    path = config.db_path
    seen = data.observe(config, status)
    source = data.assess(config, status)
    st.title(tr("title", lang))
    _body(path, source, lang, tz)
    with st.sidebar:
        st.divider()
        panel.render(config, lang, tz, seen)


# --- language and time zone --------------------------------------------------------------


def _language(config: Config) -> Language:
    if LANG_KEY not in st.session_state:
        st.session_state[LANG_KEY] = pick_language(
            st.query_params.get("lang"), config.ui.language, st.context.locale
        )
    with st.sidebar:
        st.segmented_control(
            "Language / 언어", LANGUAGES, key=LANG_KEY, format_func=LANG_NAMES.get,
            required=True, label_visibility="collapsed",
        )
    lang: Language = st.session_state[LANG_KEY]
    return lang


def _viewer_tz() -> tzinfo | None:
    """The browser's time zone, when it says; else this computer's."""
    name = st.context.timezone
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


# --- body --------------------------------------------------------------------------------


def _body(path: Path, source: Source, lang: Language, tz: tzinfo | None) -> None:
    """``path`` is the ERP's file (named in messages); the data comes from the snapshot."""
    if source.available is not Availability.READY:
        _state_message(path, source, lang)
        return
    source, catalog = _guarded(source, prepared.load_catalog)
    if catalog is None:
        _state_message(path, source, lang)
        return
    with st.sidebar:
        choice = _filter_widgets(catalog, lang)
    limit, cursor = _paging(choice.filters())
    source, results = _guarded(
        source, lambda s: prepared.load_results(s, choice, limit, cursor))
    if results is None:
        _state_message(path, source, lang)
        return
    when = fmt_time(source.as_of, lang, tz)
    if source.note is Note.UPDATING:
        st.info(tr("updating_as_of", lang, when=when), icon=":material/sync:")
    elif source.note is Note.HELD_BACK:
        st.warning(tr("held_back_as_of", lang, when=when, reason=source.reason),
                   icon=":material/block:")
    _headline(choice, source, lang, tz)
    if results.kpis.records == 0:
        st.info(tr("no_records", lang))
        return
    _kpis(results, lang)
    _charts(source, choice, lang)
    _records(source, choice, results.page, results.kpis.records, lang)


def _state_message(path: Path, source: Source, lang: Language) -> None:
    if source.available is Availability.NO_DB:
        st.info(f"**{tr('no_db_title', lang)}**\n\n{tr('no_db_body', lang, path=path)}",
                icon=":material/hourglass_empty:")
    elif source.available is Availability.UNREADABLE:
        st.error(f"**{tr('unreadable_title', lang)}**\n\n"
                 f"{tr('unreadable_body', lang, reason=source.reason)}",
                 icon=":material/error:")
    else:
        st.info(tr("updating_no_data", lang), icon=":material/sync:")


def _guarded(source: Source, read: Callable[[Source], T]) -> tuple[Source, T | None]:
    """Read for ``source``; a snapshot that cannot be read (deleted by hand, a full disk)
    is shown as unreadable, with the reason."""
    try:
        return source, read(source)
    except q.DataUnavailable as exc:
        return replace(source, available=Availability.UNREADABLE, reason=exc.reason), None


# --- filters -----------------------------------------------------------------------------


def _query_lists() -> dict[str, list[str]]:
    return {k: st.query_params.get_all(k) for k in st.query_params}


def _filter_widgets(catalog: Catalog, lang: Language) -> Choice:
    """The sidebar filters, seeded once per session from the URL and written back to it."""
    state = st.session_state
    if not state.get(FILTERS_READY):
        choice, problems = parse_query(_query_lists(), catalog)
        _seed(choice)
        state[FILTER_NOTES] = problems
        state[FILTERS_READY] = True
    _follow_default_dates(catalog)
    st.header(tr("filters", lang))
    for note in state.get(FILTER_NOTES) or []:
        st.warning(tr("bad_filter", lang, detail=note))
    st.date_input(tr("date_range", lang), key=F_DATES, format="YYYY-MM-DD")
    st.multiselect(tr("plant", lang), catalog.plants, key=F_PLANT,
                   placeholder=tr("all", lang))
    line_codes = catalog.line_codes(state[F_PLANT])
    state[F_LINE] = [c for c in state[F_LINE] if c in line_codes]
    st.multiselect(tr("line", lang), line_codes, key=F_LINE, placeholder=tr("all", lang),
                   format_func=lambda c: f"{catalog.lines[c].line_name} ({c})")
    st.multiselect(tr("item_group", lang), catalog.item_groups, key=F_GROUP,
                   placeholder=tr("all", lang))
    item_codes = catalog.item_codes(state[F_GROUP])
    state[F_ITEM] = [c for c in state[F_ITEM] if c in item_codes]
    st.multiselect(tr("item", lang), item_codes, key=F_ITEM, placeholder=tr("all", lang),
                   format_func=lambda c: f"{c} {catalog.items[c].item_name}")
    st.selectbox(tr("shift", lang), ("", "D", "N"), key=F_SHIFT,
                 format_func=lambda s: tr(f"shift_{s}", lang) if s else tr("all", lang))
    st.button(tr("reset_filters", lang), on_click=_reset, args=(catalog,), key="reset_filters")
    choice = _current_choice(catalog)
    wanted = {**choice.query(), "lang": st.session_state[LANG_KEY]}
    default = catalog.default()
    if (choice.date_from, choice.date_to) == (default.date_from, default.date_to):
        # The default period is left out of the address, so a shared link keeps
        # following the newest data rather than pinning today's last 30 days.
        wanted.pop("date_from", None)
        wanted.pop("date_to", None)
    if _query_lists() != {k: v if isinstance(v, list) else [v] for k, v in wanted.items()}:
        st.query_params.from_dict(wanted)
    return choice


def _follow_default_dates(catalog: Catalog) -> None:
    """A period nobody picked moves with the data: a new export with later dates shows
    its last 30 days, not the previous export's."""
    state = st.session_state
    default = catalog.default()
    now = (default.date_from, default.date_to) if default.date_from else ()
    before = state.get(DEFAULT_DATES)
    if before is not None and before != now and tuple(state.get(F_DATES) or ()) == before:
        state[F_DATES] = now
    state[DEFAULT_DATES] = now


def _seed(choice: Choice) -> None:
    state = st.session_state
    state[F_DATES] = (choice.date_from, choice.date_to) if choice.date_from else ()
    state[F_PLANT] = list(choice.plant)
    state[F_LINE] = list(choice.line)
    state[F_GROUP] = list(choice.item_group)
    state[F_ITEM] = list(choice.item)
    state[F_SHIFT] = choice.shift or ""


def _reset(catalog: Catalog) -> None:
    _seed(catalog.default())
    st.session_state[FILTER_NOTES] = []


def _current_choice(catalog: Catalog) -> Choice:
    state = st.session_state
    dates = tuple(state.get(F_DATES) or ())
    if len(dates) == 2:
        start, end = dates
    elif len(dates) == 1:  # the second click of a range pick has not come yet
        start = end = dates[0]
    else:
        default = catalog.default()
        start, end = default.date_from, default.date_to
    return Choice(
        date_from=start, date_to=end,
        plant=tuple(state[F_PLANT]), line=tuple(state[F_LINE]),
        item_group=tuple(state[F_GROUP]), item=tuple(state[F_ITEM]),
        shift=state[F_SHIFT] or None,
    )


def _paging(filters: q.Filters) -> tuple[int, str | None]:
    """Rows per page and this page's cursor; a new filter starts at page one."""
    state = st.session_state
    limit = int(state.get("rows_per_page", PAGE_SIZES[0]))
    book: dict[str, Any] = state.get(PAGING) or {}
    key = (filters.key(), limit)
    if book.get("key") != key:
        book = {"key": key, "cursors": [None]}
        state[PAGING] = book
    cursors: list[str | None] = book["cursors"]
    return limit, cursors[-1]


def _page_move(step: int, next_cursor: str | None = None) -> None:
    book = st.session_state[PAGING]
    if step > 0 and next_cursor:
        book["cursors"].append(next_cursor)
    elif step < 0 and len(book["cursors"]) > 1:
        book["cursors"].pop()
    elif step == 0:
        del book["cursors"][1:]


# --- rendering ---------------------------------------------------------------------------


def _headline(choice: Choice, source: Source, lang: Language, tz: tzinfo | None) -> None:
    parts = []
    if choice.date_from and choice.date_to:
        days = (choice.date_to - choice.date_from).days + 1
        parts.append(tr("period", lang, start=choice.date_from, end=choice.date_to, days=days))
    parts.append(tr("data_as_of", lang, when=fmt_time(source.as_of, lang, tz)))
    st.caption(" · ".join(parts))


def _kpis(r: Results, lang: Language) -> None:
    k, p = r.kpis, r.previous
    if r.previous_period is not None and p is not None and p.records:
        f = r.previous_period
        help_text = tr("vs_previous", lang, start=f.date_from, end=f.date_to)
    else:
        help_text, p = tr("no_previous", lang), None

    # (label, field, value shown, delta kind, decimals, colour when it goes up)
    specs = [
        ("good_qty", "good_qty", fmt_int(k.good_qty), "int", 0, "normal"),
        ("defect_qty", "defect_qty", fmt_int(k.defect_qty), "int", 0, "inverse"),
        ("defect_rate", "defect_rate", fmt_pct(k.defect_rate, 2), "pct", 2, "inverse"),
        ("achievement", "achievement", fmt_pct(k.achievement), "pct", 1, "normal"),
        ("run_hours", "run_minutes", fmt_hours(k.run_minutes, lang), "hours", 1, "normal"),
        ("downtime_hours", "downtime_minutes", fmt_hours(k.downtime_minutes, lang), "hours", 1,
         "inverse"),
    ]
    cols = [*st.columns(3), *st.columns(3)]  # six across would cut long numbers
    for col, (label, field, value, kind, digits, colour) in zip(cols, specs, strict=True):
        delta = None if p is None else delta_text(
            getattr(k, field), getattr(p, field), kind=kind, lang=lang, digits=digits
        )
        col.metric(tr(label, lang), value, delta, delta_color=colour, help=help_text,
                   border=True)


def _charts(source: Source, choice: Choice, lang: Language) -> None:
    specs = prepared.chart_specs(source.version, str(source.path), choice.filters(), lang)
    st.subheader(tr("daily_trend", lang))
    st.vega_lite_chart(specs["daily"], width="stretch")
    left, right = st.columns(2)
    with left:
        st.subheader(tr("by_line", lang))
        st.vega_lite_chart(specs["lines"], width="stretch")
    with right:
        st.subheader(tr("top_items", lang))
        st.vega_lite_chart(specs["items"], width="stretch")
    st.subheader(tr("defect_pareto", lang))
    if specs["pareto"] is not None:
        st.vega_lite_chart(specs["pareto"], width="stretch")
    else:
        st.caption(tr("no_defects", lang))


def _records(source: Source, choice: Choice, page: q.RecordsPage, total: int,
             lang: Language) -> None:
    st.subheader(tr("records", lang))
    book = st.session_state[PAGING]
    number = len(book["cursors"])
    df = pd.DataFrame([q.as_dicts([r])[0] for r in page.records], columns=q.RECORD_FIELDS)
    df["shift"] = df["shift"].map(lambda s: tr(f"shift_{s}", lang) if s in "DN" else s)
    qty = st.column_config.NumberColumn
    config: dict[str, Any] = {name: tr(f"col_{name}", lang) for name in q.RECORD_FIELDS}
    for name in ("plan_qty", "good_qty", "defect_qty"):
        config[name] = qty(tr(f"col_{name}", lang), format="localized")
    for name in ("run_minutes", "downtime_minutes"):
        config[name] = qty(tr(f"col_{name}", lang), format="%.1f")
    st.dataframe(df, hide_index=True, column_config=config, key="records_table")
    cols = st.columns([1, 1, 1, 2, 2, 3])
    cols[0].button(tr("first_page", lang), on_click=_page_move, args=(0,),
                   disabled=number == 1, key="page_first")
    cols[1].button(tr("prev_page", lang), on_click=_page_move, args=(-1,),
                   disabled=number == 1, key="page_prev")
    cols[2].button(tr("next_page", lang), on_click=_page_move, args=(1, page.next_cursor),
                   disabled=page.next_cursor is None, key="page_next")
    cols[3].markdown(f"{tr('page_n', lang, page=number)} · "
                     f"{tr('records_total', lang, n=fmt_int(total))}")
    cols[4].selectbox(tr("rows_per_page", lang), PAGE_SIZES, key="rows_per_page",
                      label_visibility="collapsed")
    if source.path is not None:
        f, snapshot = choice.filters(), source.path
        name = f"production_records_{choice.date_from}_{choice.date_to}.csv"
        cols[5].download_button(
            tr("download_csv", lang),
            data=lambda: data.records_csv(snapshot, f),
            file_name=name, mime="text/csv", icon=":material/download:", key="csv",
        )
