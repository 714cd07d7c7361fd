"""Filters of the page and the URL query string, both ways.

A view can be shared by its address: ``?date_from=2026-03-01&date_to=2026-03-31&line=P1-L01
&line=P1-L03&shift=D&lang=en``. Codes repeat for several values. Values that cannot be
used (a bad date, an unknown line) are dropped with a note, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from core import queries as q
from core.queries import DEFAULT_PERIOD_DAYS, SHIFTS, Filters

CODE_PARAMS = ("plant", "line", "item_group", "item")


@dataclass(frozen=True)
class Choice:
    """What the person picked; empty tuples mean all."""

    date_from: date | None = None
    date_to: date | None = None
    plant: tuple[str, ...] = ()
    line: tuple[str, ...] = ()
    item_group: tuple[str, ...] = ()
    item: tuple[str, ...] = ()
    shift: str | None = None

    def filters(self) -> Filters:
        return Filters(
            date_from=self.date_from, date_to=self.date_to,
            plant=self.plant or None, line_code=self.line or None,
            item_group=self.item_group or None, item_code=self.item or None,
            shift=self.shift,
        )

    def query(self) -> dict[str, str | list[str]]:
        """The URL query parameters of this choice (defaults left out)."""
        out: dict[str, str | list[str]] = {}
        if self.date_from:
            out["date_from"] = self.date_from.isoformat()
        if self.date_to:
            out["date_to"] = self.date_to.isoformat()
        for name in CODE_PARAMS:
            values = getattr(self, name)
            if values:
                out[name] = list(values)
        if self.shift:
            out["shift"] = self.shift
        return out


@dataclass(frozen=True)
class Catalog:
    """The codes a choice may use (from the DB's master data)."""

    plants: tuple[str, ...]
    lines: Mapping[str, q.Line]  # by code
    item_groups: tuple[str, ...]
    items: Mapping[str, q.Item]  # by code
    span: q.DateRange = field(default_factory=lambda: q.DateRange(None, None))

    @classmethod
    def build(cls, span: q.DateRange, items: Iterable[q.Item],
              lines: Iterable[q.Line]) -> Catalog:
        by_line = {ln.line_code: ln for ln in lines}
        by_item = {it.item_code: it for it in items}
        return cls(
            plants=tuple(sorted({ln.plant for ln in by_line.values()})),
            lines=by_line,
            item_groups=tuple(sorted({it.item_group for it in by_item.values()
                                      if it.item_group})),
            items=by_item,
            span=span,
        )

    def line_codes(self, plants: Sequence[str]) -> list[str]:
        return [c for c, ln in self.lines.items() if not plants or ln.plant in plants]

    def item_codes(self, groups: Sequence[str]) -> list[str]:
        return [c for c, it in self.items.items() if not groups or it.item_group in groups]

    def default(self) -> Choice:
        d = q.default_filters(self.span, DEFAULT_PERIOD_DAYS)
        return Choice(date_from=d.date_from, date_to=d.date_to)


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name) or []
    return values[-1] if values else None


def _date(params: Mapping[str, Sequence[str]], name: str, problems: list[str]) -> date | None:
    text = _one(params, name)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(f"{name}={text!r} is not a date (YYYY-MM-DD)")
        return None


def _codes(params: Mapping[str, Sequence[str]], name: str, allowed: Iterable[str],
           problems: list[str]) -> tuple[str, ...]:
    known = set(allowed)
    out: list[str] = []
    for value in params.get(name) or []:
        if value in known:
            if value not in out:
                out.append(value)
        else:
            problems.append(f"{name}={value!r} is not in the database")
    return tuple(out)


def parse_query(params: Mapping[str, Sequence[str]], catalog: Catalog) -> tuple[Choice, list[str]]:
    """The choice a URL asks for, completed with defaults; and what had to be dropped."""
    problems: list[str] = []
    default = catalog.default()
    start = _date(params, "date_from", problems)
    end = _date(params, "date_to", problems)
    if start is None and end is None:
        start, end = default.date_from, default.date_to
    elif start is None:
        start = end
    elif end is None:
        end = start
    if start and end and start > end:
        problems.append(f"date_from {start} is after date_to {end}")
        start, end = default.date_from, default.date_to
    plants = _codes(params, "plant", catalog.plants, problems)
    lines = _codes(params, "line", catalog.line_codes(plants), problems)
    groups = _codes(params, "item_group", catalog.item_groups, problems)
    item_codes = _codes(params, "item", catalog.item_codes(groups), problems)
    shift = _one(params, "shift")
    if shift is not None and shift not in SHIFTS:
        problems.append(f"shift={shift!r} is not D or N")
        shift = None
    choice = Choice(start, end, plants, lines, groups, item_codes, shift or None)
    return choice, problems
